"""A tiny HTTP service for the local engine's tests (stdlib only); its behaviour is chosen by environment
flags.

APP_CRASH=1           exit with code 3 right after start (a crash loop)
APP_NEVER_READY=1     /ready answers 503 forever
APP_IGNORE_TERM=1     ignore SIGTERM (so the engine has to SIGKILL the process group)
APP_CHILD=1           start a child process in the same process group that also ignores SIGTERM
APP_BURN=1            burn CPU in a thread for at most APP_BURN_SECONDS (default 60) seconds
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("JUANIE_VERSION", "dev")
INSTANCE = os.environ.get("JUANIE_INSTANCE", "?")
_inflight = 0
_lock = threading.Lock()


def log(level: str, msg: str, **fields: object) -> None:
    print(json.dumps({"level": level, "msg": msg, "ts": time.time(), **fields}), flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet: the load tests send thousands
        pass

    def _send(self, code: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        global _inflight
        with _lock:
            _inflight += 1
        try:
            path, _, query = self.path.partition("?")
            if path == "/ready":
                if os.environ.get("APP_NEVER_READY") == "1":
                    self._send(503, {"ready": False})
                else:
                    self._send(200, {"ready": True})
            elif path == "/env":
                self._send(200, {"value": os.environ.get(query.removeprefix("name="))})
            elif path == "/log":
                print(f"plain line {query}", flush=True)
                print(f"ERROR something on stderr {query}", file=sys.stderr, flush=True)
                log("warning", "asked to log", query=query)
                self._send(200, {"logged": True})
            else:
                self._send(200, {"version": VERSION, "instance": INSTANCE, "pid": os.getpid(), "path": path})
        finally:
            with _lock:
                _inflight -= 1


def _burn(seconds: float) -> None:
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        x = (x * 31 + 7) % 1_000_003


def main() -> None:
    if os.environ.get("APP_CRASH") == "1":
        print("fatal: APP_CRASH is set, exiting", file=sys.stderr, flush=True)
        sys.exit(3)
    port = int(os.environ["PORT"])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    if os.environ.get("APP_CHILD") == "1":
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)",
            ]
        )
        log("info", "child started", child_pid=child.pid)
    if os.environ.get("APP_BURN") == "1":
        threading.Thread(target=_burn, args=(float(os.environ.get("APP_BURN_SECONDS", "60")),), daemon=True).start()

    def on_term(signum: int, frame: object) -> None:
        log("info", "got SIGTERM", inflight=_inflight)
        if os.environ.get("APP_IGNORE_TERM") == "1":
            return
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    log("info", "listening", port=port, version=VERSION)
    server.serve_forever(poll_interval=0.05)
    deadline = time.monotonic() + 5
    while _inflight and time.monotonic() < deadline:
        time.sleep(0.01)
    server.server_close()
    log("info", "stopped")


if __name__ == "__main__":
    main()
