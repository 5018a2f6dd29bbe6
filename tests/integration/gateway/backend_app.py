"""A small real HTTP backend for the gateway tests, run as its own process.

`python backend_app.py --name v1 [--mode normal|read-then-close]` binds 127.0.0.1:0 and prints `READY <port>`.
Endpoints: `/__count` (requests seen, not itself counted), `/slow?ms=N`, `/sse?n=N&ms=M` (streamed events),
`/echo` (returns the body), `/status/<code>`, anything else -> JSON describing the request.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

COUNT = 0
LOCK = threading.Lock()


def make_handler(name: str, mode: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("transfer-encoding", "").lower():
                data = b""
                while True:
                    size = int(self.rfile.readline().strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            length = int(self.headers.get("content-length") or 0)
            return self.rfile.read(length) if length else b""

        def _handle(self) -> None:
            global COUNT
            url = urlsplit(self.path)
            if url.path == "/__count":
                with LOCK:
                    count = COUNT
                self._send(200, json.dumps({"count": count}).encode())
                return
            with LOCK:
                COUNT += 1
            body = self._body()
            if mode == "read-then-close":
                self.close_connection = True
                self.wfile.flush()
                self.connection.close()
                return
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path == "/slow":
                time.sleep(int(query.get("ms", "100")) / 1000)
            if url.path == "/sse":
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                for i in range(int(query.get("n", "3"))):
                    self.wfile.write(f"data: {i}\n\n".encode())
                    self.wfile.flush()
                    time.sleep(int(query.get("ms", "300")) / 1000)
                self.close_connection = True
                return
            if url.path == "/echo":
                self._send(200, body, "application/octet-stream")
                return
            if url.path.startswith("/status/"):
                self._send(int(url.path.rsplit("/", 1)[1]), b"{}")
                return
            info = {
                "name": name,
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body_length": len(body),
            }
            self._send(200, json.dumps(info).encode())

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # listen backlog: the default 5 drops SYNs under load (1 s retransmits)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="backend")
    parser.add_argument("--mode", default="normal", choices=["normal", "read-then-close"])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = _Server(("127.0.0.1", args.port), make_handler(args.name, args.mode))
    print(f"READY {server.server_address[1]}", flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
