"""JSON logs, one object per line on stdout, each carrying the trace id of the request being served.

A log shipper (Juanie's built-in log store, or Loki/Elasticsearch at scale) can then filter by service and
follow one request across user → product → payment by its ``trace_id`` without parsing free text.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

_trace_id: contextvars.ContextVar[str] = contextvars.ContextVar("microshop_trace_id", default="")
_TRACE_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def new_trace_id() -> str:
    """A fresh 32-hex-digit trace id (the W3C trace-context size)."""
    return uuid.uuid4().hex


def accept_trace_id(header: str | None) -> str:
    """Use the caller's ``X-Trace-Id`` when it is a sane token; otherwise start a new trace.

    Arbitrary header text would end up in every log line, so anything that is not a short token is replaced.
    """
    if header and _TRACE_ID_RE.match(header):
        return header
    return new_trace_id()


def current_trace_id() -> str:
    """The trace id of the request this task is serving, or ``""`` outside a request."""
    return _trace_id.get()


def set_trace_id(trace_id: str) -> contextvars.Token[str]:
    """Bind ``trace_id`` to the current task; give the token to :func:`reset_trace_id` at the end."""
    return _trace_id.set(trace_id)


def reset_trace_id(token: contextvars.Token[str]) -> None:
    _trace_id.reset(token)


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object: ts, level, service, msg, trace_id, plus the record's ``fields``."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self._service,
            "msg": record.getMessage(),
            "trace_id": current_trace_id(),
        }
        if record.name and not record.name.startswith("microshop"):
            entry["logger"] = record.name
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                entry.setdefault(key, value)
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
            entry["stack"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def configure_logging(service: str, level: str = "info") -> logging.Logger:
    """Send every logger (ours and uvicorn's) through one JSON handler on stdout at ``level``."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
    # Access lines are written by our own middleware, with the trace id and route template.
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("pika", "httpx", "httpcore", "psycopg"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return logging.getLogger(f"microshop.{service}")


def log_fields(**fields: Any) -> dict[str, Any]:
    """``extra=`` for a logging call that adds structured ``fields`` to the JSON line."""
    return {"fields": fields}
