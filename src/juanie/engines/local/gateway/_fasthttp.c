/* The gateway's fast path: parse and rewrite the common HTTP/1.x message head in one call.
 *
 * Why: per request, the proxy's Python code cost more than the kernel and the event loop together, and most
 * of it went to one small job done field by field through parser callbacks: read a simple head, drop the
 * hop-by-hop headers, add the forwarding ones. These two functions do that job in one pass over the bytes.
 *
 * They are a strict subset recognizer, never a second parser with opinions of its own. A head is taken only
 * when it is complete, within the caller's size cap and plainly valid (RFC 9112 grammar with no obs-fold, no
 * obs-text, no bare LF, no body or a Content-Length body, no duplicates of the fields that decide routing and
 * framing); everything else returns None and the caller hands the bytes to httptools (llhttp), which stays
 * the judge of odd, oversized and hostile input. The results are checked against the httptools path by
 * tests/unit/gateway/test_gateway_fasthttp.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_HEADERS 100

static unsigned char TCHAR[256];     /* token characters (field names, methods) */
static unsigned char VALUECHAR[256]; /* visible ASCII, space and tab: what a plain field value holds */
static PyObject *STATUS_LINES[600];  /* "HTTP/1.1 200 OK\r\n" per code, set by set_status_lines() */
static uint64_t rng_state[2];

/* The methods taken here (interned: no allocation per request). Any other one, CONNECT included, goes to
 * httptools, which knows which methods exist and what they mean for the connection. */
static const char *const METHOD_NAMES[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", NULL};
static PyObject *METHODS[7];

typedef struct {
    Py_ssize_t name, name_len, value, value_len;
    int kind;
} Field;

enum {
    F_OTHER = 0,
    F_HOST,
    F_CONTENT_LENGTH,
    F_TRANSFER_ENCODING,
    F_CONNECTION,
    F_HOP, /* keep-alive, te, trailer: dropped */
    F_UPGRADE,
    F_EXPECT,
    F_FORWARDED_FOR,
    F_TRACE_ID,
};

static int lower_equals(const char *s, Py_ssize_t n, const char *word) {
    Py_ssize_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') c += 32;
        if (word[i] == '\0' || c != (unsigned char)word[i]) return 0;
    }
    return word[n] == '\0';
}

static int classify(const char *s, Py_ssize_t n) {
    switch (n) {
    case 2: if (lower_equals(s, n, "te")) return F_HOP; break;
    case 4: if (lower_equals(s, n, "host")) return F_HOST; break;
    case 6: if (lower_equals(s, n, "expect")) return F_EXPECT; break;
    case 7:
        if (lower_equals(s, n, "upgrade")) return F_UPGRADE;
        if (lower_equals(s, n, "trailer")) return F_HOP;
        break;
    case 10:
        if (lower_equals(s, n, "connection")) return F_CONNECTION;
        if (lower_equals(s, n, "keep-alive")) return F_HOP;
        if (lower_equals(s, n, "x-trace-id")) return F_TRACE_ID;
        break;
    case 14: if (lower_equals(s, n, "content-length")) return F_CONTENT_LENGTH; break;
    case 15: if (lower_equals(s, n, "x-forwarded-for")) return F_FORWARDED_FOR; break;
    case 16: if (lower_equals(s, n, "proxy-connection")) return F_CONNECTION; break; /* llhttp reads it so */
    case 17: if (lower_equals(s, n, "transfer-encoding")) return F_TRANSFER_ENCODING; break;
    }
    return F_OTHER;
}

/* Connection tokens: bit 1 = close, bit 2 = keep-alive, bit 4 = upgrade. */
static int connection_tokens(const char *s, Py_ssize_t n) {
    int flags = 0;
    Py_ssize_t i = 0;
    while (i < n) {
        Py_ssize_t start, end;
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ',')) i++;
        start = i;
        while (i < n && s[i] != ',') i++;
        end = i;
        while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t')) end--;
        if (lower_equals(s + start, end - start, "close")) flags |= 1;
        else if (lower_equals(s + start, end - start, "keep-alive")) flags |= 2;
        else if (lower_equals(s + start, end - start, "upgrade")) flags |= 4;
    }
    return flags;
}

/* The fields both directions treat alike, those about the connection itself: -1 when the fast path must
 * decline the message (a transfer coding, a protocol upgrade), 0 for a field that is not forwarded, 1 else. */
static int connection_field(const char *b, const Field *f, int *conn) {
    switch (f->kind) {
    case F_TRANSFER_ENCODING:
    case F_UPGRADE:
        return -1;
    case F_CONNECTION:
        *conn |= connection_tokens(b + f->value, f->value_len);
        return 0;
    case F_HOP:
        return 0;
    }
    return 1;
}

/* Parse header lines from `p` up to and including the empty line. Returns the offset after the head, or -1
 * when the head is incomplete or not plainly valid (the caller then falls back to httptools). */
static Py_ssize_t parse_fields(const char *b, Py_ssize_t p, Py_ssize_t n, Field *fields, int *count) {
    int k = 0;
    for (;;) {
        Py_ssize_t name, value, value_end;
        if (p + 1 >= n) return -1;
        if (b[p] == '\r') {
            if (b[p + 1] != '\n') return -1;
            *count = k;
            return p + 2;
        }
        if (k == MAX_HEADERS) return -1;
        name = p;
        while (p < n && TCHAR[(unsigned char)b[p]]) p++;
        if (p == name || p >= n || b[p] != ':') return -1;
        fields[k].name = name;
        fields[k].name_len = p - name;
        p++;
        while (p < n && (b[p] == ' ' || b[p] == '\t')) p++;
        value = p;
        while (p < n && VALUECHAR[(unsigned char)b[p]]) p++;
        if (p + 1 >= n || b[p] != '\r' || b[p + 1] != '\n') return -1;
        value_end = p; /* trailing whitespace stays, as llhttp keeps it: both paths forward the same bytes */
        fields[k].value = value;
        fields[k].value_len = value_end - value;
        fields[k].kind = classify(b + name, fields[k].name_len);
        k++;
        p += 2;
    }
}

static int all_digits(const char *s, Py_ssize_t n) {
    Py_ssize_t i;
    if (n == 0 || n > 18) return 0;
    for (i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

static uint64_t next_random(void) { /* xorshift128+: trace ids are identifiers, not secrets */
    uint64_t s1 = rng_state[0];
    const uint64_t s0 = rng_state[1];
    rng_state[0] = s0;
    s1 ^= s1 << 23;
    rng_state[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return rng_state[1] + s0;
}

static char *put(char *out, const char *s, Py_ssize_t n) {
    memcpy(out, s, (size_t)n);
    return out + n;
}

#define PUT_LITERAL(out, lit) put((out), (lit), (Py_ssize_t)(sizeof(lit) - 1))

PyDoc_STRVAR(parse_request_doc,
"parse_request(data, start, client_ip[, max_head]) -> (end, method, target, host, tail, keep_alive, http10)\n"
"| None\n\n"
"Recognise one complete, plain request head without a body at data[start:]. `tail` is the forwarded head\n"
"after the request line: the client's fields (lower-case names) minus hop-by-hop ones, then\n"
"x-forwarded-for (client_ip appended), x-forwarded-proto and a generated x-trace-id when none came, then the\n"
"empty line. None means: hand these bytes to httptools. With max_head > 0, no byte past data[start + max_head]\n"
"is looked at: a longer head is declined, and httptools' path, which counts what it holds, answers 431.");

static PyObject *parse_request(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *b, *ip;
    Py_ssize_t n, p, start, method_end, target, target_end, end, ip_len, size, max_head = 0;
    Field fields[MAX_HEADERS];
    int count = 0, i, http10, keep_alive, conn = 0;
    Py_ssize_t host = -1, host_len = 0, xff = -1, xff_len = 0;
    int has_trace = 0, length_seen = 0;
    PyObject *tail, *result, *method;
    char *out;

    if ((nargs != 3 && nargs != 4) || !PyBytes_CheckExact(args[0]) || !PyBytes_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "parse_request(data: bytes, start: int, client_ip: bytes, max_head: int = 0)");
        return NULL;
    }
    start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred()) return NULL;
    if (nargs == 4) {
        max_head = PyLong_AsSsize_t(args[3]);
        if (max_head == -1 && PyErr_Occurred()) return NULL;
    }
    b = PyBytes_AS_STRING(args[0]);
    n = PyBytes_GET_SIZE(args[0]);
    ip = PyBytes_AS_STRING(args[2]);
    ip_len = PyBytes_GET_SIZE(args[2]);
    if (start < 0 || start >= n) Py_RETURN_NONE;
    if (max_head > 0 && n - start > max_head) n = start + max_head; /* a longer head is not ours to take */

    p = start;
    while (p < n && TCHAR[(unsigned char)b[p]]) p++;
    method_end = p;
    if (method_end == start || p >= n || b[p] != ' ') Py_RETURN_NONE;
    method = NULL;
    for (i = 0; METHOD_NAMES[i] != NULL; i++) {
        if ((Py_ssize_t)strlen(METHOD_NAMES[i]) == method_end - start &&
            memcmp(METHOD_NAMES[i], b + start, (size_t)(method_end - start)) == 0) {
            method = METHODS[i];
            break;
        }
    }
    if (method == NULL) Py_RETURN_NONE;
    target = ++p;
    if (p >= n || b[p] != '/') Py_RETURN_NONE; /* origin form only; absolute form and '*' go to httptools */
    while (p < n && b[p] > ' ' && b[p] < 0x7f) p++;
    target_end = p;
    if (n - p < 11 || memcmp(b + p, " HTTP/1.", 8) != 0 || b[p + 9] != '\r' || b[p + 10] != '\n')
        Py_RETURN_NONE;
    if (b[p + 8] == '1') http10 = 0;
    else if (b[p + 8] == '0') http10 = 1;
    else Py_RETURN_NONE;
    end = parse_fields(b, p + 11, n, fields, &count);
    if (end < 0) Py_RETURN_NONE;

    size = 0;
    for (i = 0; i < count; i++) {
        Field *f = &fields[i];
        int forward = connection_field(b, f, &conn);
        if (forward < 0) Py_RETURN_NONE;
        if (forward == 0) continue;
        switch (f->kind) {
        case F_HOST:
            if (host >= 0) Py_RETURN_NONE;
            host = f->value;
            host_len = f->value_len;
            break;
        case F_CONTENT_LENGTH: {
            Py_ssize_t j;
            if (f->value_len == 0 || length_seen++) Py_RETURN_NONE; /* llhttp refuses a second one */
            for (j = 0; j < f->value_len; j++)
                if (b[f->value + j] != '0') Py_RETURN_NONE; /* a body: the streaming path carries it */
            break;
        }
        case F_EXPECT:
            Py_RETURN_NONE;
        case F_FORWARDED_FOR:
            if (xff >= 0) Py_RETURN_NONE;
            xff = f->value;
            xff_len = f->value_len;
            continue;
        case F_TRACE_ID:
            has_trace = 1;
            break;
        }
        size += f->name_len + 2 + f->value_len + 2;
    }
    if (conn & 4) Py_RETURN_NONE;
    if (host < 0 && !http10) Py_RETURN_NONE; /* HTTP/1.1 without Host: httptools' path answers it */
    keep_alive = http10 ? (conn & 2) != 0 : !(conn & 1); /* llhttp's rule: 1.0 needs keep-alive, 1.1 no close */

    if (xff_len == 0) xff = -1;                                 /* an empty one adds nothing */
    size += 17 + (xff >= 0 ? xff_len + 2 : 0) + ip_len + 2; /* x-forwarded-for */
    size += 25;                                                 /* x-forwarded-proto: http\r\n */
    if (!has_trace) size += 12 + 32 + 2;                        /* x-trace-id */
    size += 2;
    tail = PyBytes_FromStringAndSize(NULL, size);
    if (tail == NULL) return NULL;
    out = PyBytes_AS_STRING(tail);
    for (i = 0; i < count; i++) {
        Field *f = &fields[i];
        Py_ssize_t j;
        if (f->kind == F_CONNECTION || f->kind == F_HOP || f->kind == F_FORWARDED_FOR) continue;
        for (j = 0; j < f->name_len; j++) {
            unsigned char c = (unsigned char)b[f->name + j];
            *out++ = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        out = PUT_LITERAL(out, ": ");
        out = put(out, b + f->value, f->value_len);
        out = PUT_LITERAL(out, "\r\n");
    }
    out = PUT_LITERAL(out, "x-forwarded-for: ");
    if (xff >= 0) {
        out = put(out, b + xff, xff_len);
        out = PUT_LITERAL(out, ", ");
    }
    out = put(out, ip, ip_len);
    out = PUT_LITERAL(out, "\r\nx-forwarded-proto: http\r\n");
    if (!has_trace) {
        static const char hex[] = "0123456789abcdef";
        uint64_t hi = next_random(), lo = next_random();
        int k;
        out = PUT_LITERAL(out, "x-trace-id: ");
        for (k = 60; k >= 0; k -= 4) *out++ = hex[(hi >> k) & 15];
        for (k = 60; k >= 0; k -= 4) *out++ = hex[(lo >> k) & 15];
        out = PUT_LITERAL(out, "\r\n");
    }
    out = PUT_LITERAL(out, "\r\n");
    if (out != PyBytes_AS_STRING(tail) + size) {
        Py_DECREF(tail);
        PyErr_SetString(PyExc_AssertionError, "fasthttp: forwarded head size mismatch");
        return NULL;
    }
    result = Py_BuildValue("(nOy#y#NOO)", end, method, b + target, target_end - target,
                           host >= 0 ? b + host : "", host >= 0 ? host_len : (Py_ssize_t)0, tail,
                           keep_alive ? Py_True : Py_False, http10 ? Py_True : Py_False);
    return result;
}

PyDoc_STRVAR(parse_response_doc,
"parse_response(data, version, client_http10, client_keep_alive) -> (end, status, head, body_length,\n"
"upstream_keep_alive) | None\n\n"
"Recognise one complete, plain response head at the start of data, framed by Content-Length (or without a\n"
"body: 204, 304), and translate it for the client as http1.response_head does. 1xx, chunked and\n"
"close-delimited responses return None: httptools carries them.");

static PyObject *parse_response(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *b;
    Py_ssize_t n, p, end, size, length = -1, length_at = 0, length_len = 0, version_len;
    Field fields[MAX_HEADERS];
    int count = 0, i, status, http10, conn = 0, no_body, client_http10, client_keep_alive, upstream_keep_alive;
    PyObject *line, *head;
    char *out;

    if (nargs != 4 || !PyBytes_CheckExact(args[0]) || !PyBytes_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError,
                        "parse_response(data: bytes, version: bytes, client_http10: bool, client_keep_alive: bool)");
        return NULL;
    }
    client_http10 = PyObject_IsTrue(args[2]);
    client_keep_alive = PyObject_IsTrue(args[3]);
    if (client_http10 < 0 || client_keep_alive < 0) return NULL;
    b = PyBytes_AS_STRING(args[0]);
    n = PyBytes_GET_SIZE(args[0]);

    if (n < 14 || memcmp(b, "HTTP/1.", 7) != 0 || b[8] != ' ') Py_RETURN_NONE;
    if (b[7] == '1') http10 = 0;
    else if (b[7] == '0') http10 = 1;
    else Py_RETURN_NONE;
    if (b[9] < '1' || b[9] > '5' || b[10] < '0' || b[10] > '9' || b[11] < '0' || b[11] > '9') Py_RETURN_NONE;
    status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
    if (status < 200) Py_RETURN_NONE; /* interim responses: httptools' path relays them */
    p = 12;
    if (b[p] == ' ') {
        p++;
        while (p < n && (VALUECHAR[(unsigned char)b[p]])) p++;
    }
    if (p + 1 >= n || b[p] != '\r' || b[p + 1] != '\n') Py_RETURN_NONE;
    end = parse_fields(b, p + 2, n, fields, &count);
    if (end < 0) Py_RETURN_NONE;

    line = STATUS_LINES[status];
    if (line == NULL) Py_RETURN_NONE;
    version_len = PyBytes_GET_SIZE(args[1]);
    size = PyBytes_GET_SIZE(line);
    for (i = 0; i < count; i++) {
        Field *f = &fields[i];
        int forward = connection_field(b, f, &conn);
        if (forward < 0) Py_RETURN_NONE;
        if (forward == 0) continue;
        if (f->kind == F_CONTENT_LENGTH) {
            Py_ssize_t j;
            if (length >= 0 || !all_digits(b + f->value, f->value_len)) Py_RETURN_NONE;
            length_at = f->value;
            length_len = f->value_len;
            length = 0;
            for (j = 0; j < f->value_len; j++) length = length * 10 + (b[f->value + j] - '0');
            continue;
        }
        size += f->name_len + 2 + f->value_len + 2;
    }
    no_body = status == 204 || status == 304;
    if (length < 0 && !no_body) Py_RETURN_NONE; /* delimited by close: httptools' path re-frames it */
    upstream_keep_alive = http10 ? (conn & 2) != 0 : !(conn & 1);

    if (length >= 0) size += 16 + length_len + 2;
    if (!client_keep_alive) size += 19;  /* connection: close\r\n */
    else if (client_http10) size += 24;  /* connection: keep-alive\r\n */
    size += 18 + version_len + 4;        /* x-juanie-version: ...\r\n\r\n */
    head = PyBytes_FromStringAndSize(NULL, size);
    if (head == NULL) return NULL;
    out = put(PyBytes_AS_STRING(head), PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line));
    for (i = 0; i < count; i++) {
        Field *f = &fields[i];
        if (f->kind == F_CONTENT_LENGTH || f->kind == F_CONNECTION || f->kind == F_HOP) continue;
        out = put(out, b + f->name, f->name_len);
        out = PUT_LITERAL(out, ": ");
        out = put(out, b + f->value, f->value_len);
        out = PUT_LITERAL(out, "\r\n");
    }
    if (length >= 0) {
        out = PUT_LITERAL(out, "content-length: ");
        out = put(out, b + length_at, length_len);
        out = PUT_LITERAL(out, "\r\n");
    }
    if (!client_keep_alive) out = PUT_LITERAL(out, "connection: close\r\n");
    else if (client_http10) out = PUT_LITERAL(out, "connection: keep-alive\r\n");
    out = PUT_LITERAL(out, "x-juanie-version: ");
    out = put(out, PyBytes_AS_STRING(args[1]), version_len);
    out = PUT_LITERAL(out, "\r\n\r\n");
    if (out != PyBytes_AS_STRING(head) + size) {
        Py_DECREF(head);
        PyErr_SetString(PyExc_AssertionError, "fasthttp: response head size mismatch");
        return NULL;
    }
    return Py_BuildValue("(niNnO)", end, status, head, no_body ? (Py_ssize_t)0 : length,
                         upstream_keep_alive ? Py_True : Py_False);
}

PyDoc_STRVAR(set_status_lines_doc,
"set_status_lines(lines: dict[int, bytes]) -> None\n\n"
"The status line to send for each code; codes without one make parse_response return None.");

static PyObject *set_status_lines(PyObject *self, PyObject *lines) {
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    if (!PyDict_Check(lines)) {
        PyErr_SetString(PyExc_TypeError, "set_status_lines(lines: dict[int, bytes])");
        return NULL;
    }
    while (PyDict_Next(lines, &pos, &key, &value)) {
        long code = PyLong_AsLong(key);
        if (code == -1 && PyErr_Occurred()) return NULL;
        if (code < 200 || code >= 600 || !PyBytes_CheckExact(value)) continue;
        Py_INCREF(value);
        Py_XSETREF(STATUS_LINES[code], value);
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(seed_doc, "seed(a: int, b: int) -> None\n\nSeed the trace-id generator (two 64-bit integers).");

static PyObject *seed(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "seed(a: int, b: int)");
        return NULL;
    }
    rng_state[0] = PyLong_AsUnsignedLongLongMask(args[0]);
    rng_state[1] = PyLong_AsUnsignedLongLongMask(args[1]);
    if (PyErr_Occurred()) return NULL;
    if (rng_state[0] == 0 && rng_state[1] == 0) rng_state[1] = 0x9E3779B97F4A7C15ULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"parse_request", (PyCFunction)(void (*)(void))parse_request, METH_FASTCALL, parse_request_doc},
    {"parse_response", (PyCFunction)(void (*)(void))parse_response, METH_FASTCALL, parse_response_doc},
    {"set_status_lines", set_status_lines, METH_O, set_status_lines_doc},
    {"seed", (PyCFunction)(void (*)(void))seed, METH_FASTCALL, seed_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fasthttp",
    "The gateway's fast path for plain HTTP/1.x heads; see the comment at the top of _fasthttp.c.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fasthttp(void) {
    const char *extra_tchar = "!#$%&'*+-.^_`|~";
    int c;
    for (c = 0; c < 256; c++) {
        TCHAR[c] = (unsigned char)((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                   (c != 0 && strchr(extra_tchar, c) != NULL));
        VALUECHAR[c] = (unsigned char)((c > ' ' && c < 0x7f) || c == ' ' || c == '\t');
    }
    for (c = 0; METHOD_NAMES[c] != NULL; c++) {
        METHODS[c] = PyBytes_FromString(METHOD_NAMES[c]);
        if (METHODS[c] == NULL) return NULL;
    }
    rng_state[0] = 0x243F6A8885A308D3ULL;
    rng_state[1] = 0x13198A2E03707344ULL;
    return PyModule_Create(&module);
}
