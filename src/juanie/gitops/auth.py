"""Handing credentials to git for one command, without writing them where they could leak.

A token goes through `GIT_ASKPASS` (a tiny script that echoes environment variables of that one git process),
an ssh key through a 0600 temporary file named in `GIT_SSH_COMMAND`. Neither lands on a command line, in
`.git/config`, or in an error message (see `git.redact`).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_ASKPASS = """#!/bin/sh
# Answers git's credential prompts from the environment of the one command that needs them.
case "$1" in
  Username*) printf '%s\\n' "$JUANIE_GIT_USERNAME" ;;
  *) printf '%s\\n' "$JUANIE_GIT_PASSWORD" ;;
esac
"""


def is_local(url: str) -> bool:
    """A filesystem path rather than a URL or an scp-like `git@host:path`."""
    return "://" not in url and not re.match(r"^[\w.-]+@[\w.-]+:", url)


def split_credentials(url: str) -> tuple[str, str | None]:
    """Move `user:token@` out of an http(s) URL so it is never stored in git config."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and "@" in parts.netloc:
        userinfo, host = parts.netloc.rsplit("@", 1)
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), userinfo
    return url, None


@contextlib.contextmanager
def auth_env(url: str, credentials: str | None, scratch_dir: Path) -> Iterator[dict[str, str]]:
    """Environment variables that let one git command authenticate to `url`; temp files are removed after.

    `credentials` is `user:token`, a bare token (sent as user `git`, which GitHub and GitLab accept for
    tokens), or an ssh private key in PEM/OpenSSH form.
    """
    if not credentials or (is_local(url) and "PRIVATE KEY-----" not in credentials):
        yield {}
        return
    scratch_dir.mkdir(parents=True, exist_ok=True)
    if "PRIVATE KEY-----" in credentials:
        fd, key_path = tempfile.mkstemp(prefix=".juanie-key-", dir=scratch_dir)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(credentials if credentials.endswith("\n") else credentials + "\n")
            os.chmod(key_path, stat.S_IRUSR | stat.S_IWUSR)
            opts = "-o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new -o BatchMode=yes"
            ssh = f"ssh -i {key_path} {opts}"
            yield {"GIT_SSH_COMMAND": ssh}
        finally:
            os.unlink(key_path)
        return
    user, _, password = credentials.partition(":") if ":" in credentials else ("git", "", credentials)
    askpass = scratch_dir / ".juanie-askpass.sh"
    if not askpass.exists():
        tmp = scratch_dir / f".juanie-askpass.{os.getpid()}.tmp"
        tmp.write_text(_ASKPASS)
        tmp.chmod(0o700)
        os.replace(tmp, askpass)
    yield {
        "GIT_ASKPASS": str(askpass),
        "JUANIE_GIT_USERNAME": user,
        "JUANIE_GIT_PASSWORD": password,
        "GIT_TERMINAL_PROMPT": "0",
    }
