"""One unprivileged system user per project, created on first use (as GitLab's runners run each job as its own user).

Only a server running as root can do this; the name is derived from the project's name, so the same project always
gets the same uid across restarts and a second server on the same host agrees on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import subprocess
import threading
from pathlib import Path

from juanie.sandbox.jail import Identity

PREFIX = "juanie-"
_MAX_NAME = 32  # useradd's limit on Debian
_lock = threading.Lock()


class SandboxError(RuntimeError):
    """The sandbox cannot run this command here; the message says why and what to do."""


def user_name(project: str) -> str:
    """`juanie-<project>`, shortened with a digest when longer than a user name may be. Pure."""
    name = PREFIX + project.lower()
    if len(name) <= _MAX_NAME and all(c.isalnum() or c in "-_" for c in project):
        return name
    digest = hashlib.sha256(project.encode()).hexdigest()[:8]
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in project.lower())
    return f"{PREFIX}{safe[: _MAX_NAME - len(PREFIX) - 9]}-{digest}"


def project_identity(project: str) -> Identity:
    """The project's user, created (a system user, no home, no login shell) if it does not exist yet."""
    name = user_name(project)
    with _lock:
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return Identity(name, entry.pw_uid, entry.pw_gid)
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        result = subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", "--comment", f"Juanie project {project}", name],
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            entry = pwd.getpwnam(name)  # another server may have created it between our look and useradd
        except KeyError:
            raise SandboxError(
                f"cannot create the user {name!r} for project {project!r}: {result.stderr.strip() or 'useradd failed'}"
            ) from None
        return Identity(name, entry.pw_uid, entry.pw_gid)


def own(path: Path, identity: Identity | None, *, recursive: bool = False) -> None:
    """Make `path` (created if missing) the project's: its uid and gid, mode 0700, so no other project looks in.

    The whole tree is handed over when the server just wrote it (`recursive`: a fresh checkout) or when the top
    is not the project's yet (a directory from before sandboxing); a tree the project itself filled is its own.
    """
    path.mkdir(parents=True, exist_ok=True)
    if identity is None:
        return
    st = path.stat()
    if recursive or (st.st_uid, st.st_gid) != (identity.uid, identity.gid):
        for root, dirs, files in os.walk(path):
            for name in (root, *(os.path.join(root, n) for n in (*dirs, *files))):
                with contextlib.suppress(FileNotFoundError):
                    os.lchown(name, identity.uid, identity.gid)
    os.chmod(path, 0o700)
