"""What the gateway keeps on disk in its state directory, so a restarted gateway serves the same routes.

- `routes.json`  the current table, replaced atomically (write a temp file, fsync, rename) on every change
- `admin-token`  the bearer token for the admin API, created with mode 0600 when absent
- `gateway.pid`  the process id, for the engine to find (and adopt) a running gateway
- `gateway.json` the addresses actually bound (useful with port 0) and the pid
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from juanie.engines.local.gateway.routes import Route, RouteError, parse_routes, routes_document

ROUTES_FILE = "routes.json"
TOKEN_FILE = "admin-token"
PID_FILE = "gateway.pid"
INFO_FILE = "gateway.json"


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` so readers see the old or the new content, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def save_routes(state_dir: Path, routes: tuple[Route, ...]) -> None:
    atomic_write(state_dir / ROUTES_FILE, json.dumps(routes_document(routes), indent=2).encode())


def load_routes(state_dir: Path) -> tuple[Route, ...]:
    """The saved table; empty when there is none. A corrupt file is an error naming the file."""
    path = state_dir / ROUTES_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ()
    try:
        data: Any = json.loads(raw)
    except ValueError as err:
        raise RouteError(f"{path}: not valid JSON ({err}); fix or remove the file") from None
    try:
        return parse_routes(data)
    except RouteError as err:
        raise RouteError(f"{path}: {err}") from None


def admin_token(state_dir: Path) -> str:
    """Read the admin token, creating a random one (mode 0600) on first start."""
    path = state_dir / TOKEN_FILE
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    token = path.read_text().strip()
    if not token:
        raise RouteError(f"{path} is empty; remove it to have a new token generated")
    return token


def write_pid(state_dir: Path, info: dict[str, Any]) -> None:
    atomic_write(state_dir / PID_FILE, f"{os.getpid()}\n".encode())
    atomic_write(state_dir / INFO_FILE, json.dumps({"pid": os.getpid(), **info}).encode())


def remove_pid(state_dir: Path) -> None:
    """Remove the pid file, but only if it is still ours (a newer gateway may have replaced it)."""
    path = state_dir / PID_FILE
    with contextlib.suppress(OSError, ValueError):
        if int(path.read_text().strip()) == os.getpid():
            path.unlink()
            (state_dir / INFO_FILE).unlink(missing_ok=True)
