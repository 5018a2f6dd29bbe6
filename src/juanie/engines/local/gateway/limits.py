"""What one client connection may cost the gateway: head size, pipelined requests, buffered body, waiting time.

Without these a single client could exhaust the gateway's memory or its connection slots:

- `max_head_bytes` (64 KiB, `JUANIE_GATEWAY_MAX_HEAD_BYTES`): the request line plus header fields. A larger head
  is answered `431 Request Header Fields Too Large` and the connection closed. The C fast path never scans past
  the cap (it declines such a head), so httptools' path, which counts the bytes it holds in O(1) per read and per
  field, is the one that answers, whichever path is on (tests/unit/gateway/test_gateway_limits.py).
- `max_pipeline` (32, `JUANIE_GATEWAY_MAX_PIPELINE`): requests read but waiting behind the one being answered.
  At the cap the gateway stops reading from the socket (backpressure) and holds the rest of the current read
  unparsed until answers go out (the fast path stops at the cap exactly; httptools' path looks before each read,
  so it may take one read's worth more). That is what nginx does (pipelined requests wait unparsed in its fixed
  header buffers, and it reads no more while they are full) and what h11 asks of its users (it pauses after one
  request until the response is done, and uvicorn then stops reading). Answering 503 and closing instead would
  break well-behaved pipelining clients for nothing: backpressure costs them nothing and bounds memory to the
  queue plus one read, the rest waiting in the kernel's socket buffers. For the same reason queued requests are
  not answered while the client does not read its answers (the transport's write buffer is full).
- `max_buffered_body_bytes` (64 KiB, `JUANIE_GATEWAY_MAX_BUFFERED_BODY_BYTES`): request body bytes held for
  requests whose backend connection is not open yet (queued behind others, connecting, delayed by a fault).
  Above it reading stops until the body can be forwarded; a body being forwarded streams and is not held.
- `header_timeout` (30 s, `JUANIE_GATEWAY_HEADER_TIMEOUT_SECONDS`): the time a client has to send a whole head,
  from the first byte of the head (or from the connection's start, for its first request). A slow client
  (slowloris: one byte now and then) is answered `408 Request Timeout` and closed; a connection that never sent
  anything is closed. Like nginx's `client_header_timeout`, the clock is not reset by each byte.
- `idle_timeout` (75 s, `JUANIE_GATEWAY_IDLE_TIMEOUT_SECONDS`): a kept-alive connection with nothing to answer
  is closed after this long; like nginx's `keepalive_timeout` it is longer than clients keep idle connections.
  A client that stopped reading its answers is cut after as long (nginx's `send_timeout`).

Timeouts are checked by the data plane's housekeeping once a second (no timer per connection or per read), so a
connection is closed between `timeout` and `timeout + 1` second after it started waiting. The limits are passed
to the gateway as command-line options (`--max-head-bytes`, ...) whose defaults come from the environment; the
primary passes them on to its workers.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

SWEEP_SECONDS = 1.0  # how often the data plane checks connections for timeouts


@dataclass(frozen=True)
class ConnectionLimits:
    """The limits of one client connection (see the module docstring)."""

    max_head_bytes: int = 64 * 1024
    max_pipeline: int = 32
    max_buffered_body_bytes: int = 64 * 1024
    header_timeout: float = 30.0
    idle_timeout: float = 75.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                flag, variable = _OPTIONS[f.name]
                raise ValueError(f"{flag} (or ${variable}): expected a positive number, got {value!r}")

    def args(self) -> list[str]:
        """These limits as command-line options (how the primary hands them to its workers)."""
        out: list[str] = []
        for name, (flag, _env) in _OPTIONS.items():
            out += [flag, str(getattr(self, name))]
        return out


# field -> (command-line option, environment variable giving its default)
_OPTIONS = {
    "max_head_bytes": ("--max-head-bytes", "JUANIE_GATEWAY_MAX_HEAD_BYTES"),
    "max_pipeline": ("--max-pipeline", "JUANIE_GATEWAY_MAX_PIPELINE"),
    "max_buffered_body_bytes": ("--max-buffered-body-bytes", "JUANIE_GATEWAY_MAX_BUFFERED_BODY_BYTES"),
    "header_timeout": ("--header-timeout", "JUANIE_GATEWAY_HEADER_TIMEOUT_SECONDS"),
    "idle_timeout": ("--idle-timeout", "JUANIE_GATEWAY_IDLE_TIMEOUT_SECONDS"),
}
_HELP = {
    "max_head_bytes": "largest request head (request line and fields); larger ones get 431",
    "max_pipeline": "pipelined requests waiting per connection before the gateway stops reading",
    "max_buffered_body_bytes": "request body held per connection before its backend takes it; then reading stops",
    "header_timeout": "seconds a client has to send a whole request head (slow ones get 408)",
    "idle_timeout": "seconds an idle kept-alive client connection stays open",
}


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str] = os.environ) -> None:
    """Add one option per limit, its default from the environment variable named in its help."""
    defaults = ConnectionLimits()
    for name, (flag, variable) in _OPTIONS.items():
        parser.add_argument(flag, dest=name, default=env.get(variable) or str(getattr(defaults, name)),
                            help=f"{_HELP[name]} (default: ${variable} or {getattr(defaults, name)})")  # fmt: skip


def from_arguments(args: argparse.Namespace) -> ConnectionLimits:
    """The limits given on the command line (or by the environment); a clear ValueError for a bad value."""
    values: dict[str, int | float] = {}
    for f in fields(ConnectionLimits):
        text = str(getattr(args, f.name)).strip()
        flag, variable = _OPTIONS[f.name]
        try:
            values[f.name] = int(text) if f.type == "int" else float(text)
        except ValueError:
            kind = "an integer" if f.type == "int" else "a number"
            raise ValueError(f"{flag} (or ${variable}): expected {kind}, got {text!r}") from None
    return ConnectionLimits(**values)  # type: ignore[arg-type]
