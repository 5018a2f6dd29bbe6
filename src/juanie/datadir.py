"""The data directory of a server: held by one server at a time, readable by its owner only.

Two servers on one data directory would migrate the database under each other, start gateways on the same ports,
overwrite each other's pid file and adopt (or stop) each other's processes. So a server takes an exclusive `flock`
on `<data>/server.lock` before it touches anything else; a second one stops at once, naming the holder, having
changed nothing. The kernel releases the lock when the holder exits, however it exits: there is no stale lock.

The directory holds the secret key, the admin token and the database: it is made 0700 and those files 0600 at
every start (an older install may have left them readable), and the server creates everything else under umask 077.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_FILE = "server.lock"
UMASK = 0o077
PRIVATE_FILES = ("secret.key", "admin-token", "server.log", "juanie.db", "juanie.db-wal", "juanie.db-shm")


class DataDirBusy(Exception):
    """Another server holds the data directory; the message names it and says what to do."""

    def __init__(self, data_dir: Path, pid: int | None):
        self.data_dir, self.pid = data_dir, pid
        who = f"another Juanie server (pid {pid})" if pid else "another Juanie server"
        super().__init__(f"{who} is already using the data directory {data_dir}; nothing was changed. Stop it "
                         f"first (`juanie down --data-dir {data_dir}`) or give this one another --data-dir")


def claim(data_dir: Path) -> int:
    """Hold `data_dir` for this process: create it (0700) if missing, take the lock, write our pid into the lock
    file. Returns the lock's file descriptor, to keep open as long as the server runs (it is not inherited by the
    processes the server starts). Raises DataDirBusy — having written nothing — when another process holds it."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _pid_in(fd)
        os.close(fd)
        raise DataDirBusy(data_dir, pid) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def holder(data_dir: Path) -> int | None:
    """The pid of the server holding `data_dir` (0 if one holds it without saying), or None when none does."""
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _pid_in(fd) or 0
    finally:
        os.close(fd)
    return None


def make_private(data_dir: Path, database_url: str = "") -> None:
    """The directory 0700; the secret key, admin token, server log and SQLite files 0600 (where they exist)."""
    os.chmod(data_dir, 0o700)
    files = [data_dir / name for name in PRIVATE_FILES]
    if database_url.startswith("sqlite:///"):
        db = Path(database_url.removeprefix("sqlite:///").split("?", 1)[0])
        files += [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path, 0o600)


def _pid_in(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    except (OSError, ValueError):
        return None
