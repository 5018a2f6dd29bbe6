"""Helpers for the memory-exhaustion tests: a process's peak memory around an action, raw HTTP on sockets."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

MiB = 1024 * 1024


def _status_bytes(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0]) * 1024  # reported in kB
    raise AssertionError(f"/proc/{pid}/status has no {field}")


def peak_growth(pid: int, action: Callable[[], object]) -> int:
    """How far above its resident size before `action` the process's peak resident size (VmHWM) went during it.

    The peak is reset first (`5` into /proc/PID/clear_refs), so memory a handler held only for a moment counts
    too: what was freed after the request is exactly what a flood of such requests would hold at once.
    """
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = _status_bytes(pid, "VmRSS")
    action()
    return _status_bytes(pid, "VmHWM") - before


def drain(sock: socket.socket, received: bytearray) -> bool:
    """Add what the peer sent so far to `received` without waiting; True once it closed the connection."""
    sock.setblocking(False)
    try:
        while True:
            piece = sock.recv(1 << 20)
            if not piece:
                return True
            received += piece
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.setblocking(True)


def parse_response(data: bytes) -> tuple[int, dict[str, str], bytes] | None:
    """The first response in `data` if all of it is there (content-length framed), else None."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    if len(body) < length:
        return None
    return int(lines[0].split()[1]), headers, body[:length]
