"""The one place Juanie runs the `git` CLI.

Juanie uses the real git binary rather than a library: it already knows remotes, credential helpers, packs
and every edge of the object model, and its behaviour is what users expect. This module only runs it
with a safe, predictable environment and turns failures into `GitError`s that never carry credentials.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

DEFAULT_TIMEOUT = 120.0

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


class GitError(Exception):
    """A git command failed; `stderr` is git's own explanation (already redacted)."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str):
        self.args_ = [redact(str(a)) for a in args]
        self.returncode = returncode
        self.stderr = redact(stderr.strip())
        detail = self.stderr or "(no output)"
        super().__init__(f"git {' '.join(self.args_)} failed (exit {returncode}): {detail}")


def redact(text: str) -> str:
    """Hide the user-info part of URLs (`https://user:token@host` -> `https://***@host`).

    Every message that may contain a remote URL passes through here before it reaches a log or an exception.
    """
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}***@", text)


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment git runs in: the caller's, made non-interactive and with stable (C locale) messages."""
    env = dict(os.environ)
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",  # fail instead of waiting for a password on a TTY nobody watches
            "LC_ALL": "C",  # stable, parseable messages
        }
    )
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    env.pop("GIT_INDEX_FILE", None)
    if extra:
        env.update(extra)
    return env


def run_git_bytes(
    args: Sequence[str],
    cwd: Path | str | None,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    input: bytes | None = None,
) -> bytes:
    """Run `git <args>` in `cwd` and return raw stdout; raise `GitError` on failure or timeout."""
    cmd = ["git", *args]
    try:
        proc = subprocess.run(
            cmd,
            cwd=str(cwd) if cwd is not None else None,
            env=git_env(env),
            input=input,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(args, -1, f"timed out after {timeout:g}s") from exc
    except FileNotFoundError as exc:
        raise GitError(args, -1, f"cannot run git in {cwd}: {exc.strerror}") from exc
    if proc.returncode != 0:
        raise GitError(args, proc.returncode, proc.stderr.decode("utf-8", "replace"))
    return proc.stdout


def run_git(
    args: Sequence[str],
    cwd: Path | str | None,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    input: str | None = None,
) -> str:
    """Run `git <args>` in `cwd` and return stdout as text (trailing newline stripped)."""
    raw = run_git_bytes(args, cwd, env=env, timeout=timeout, input=input.encode() if input is not None else None)
    return raw.decode("utf-8", "replace").rstrip("\n")


def is_sha(text: str) -> bool:
    """A full 40-hex object name (what every public function here returns)."""
    return len(text) == 40 and all(c in "0123456789abcdef" for c in text)
