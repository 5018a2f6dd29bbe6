"""A project's source repository, seen through a local bare mirror.

Juanie never works in the user's repository: it keeps a bare mirror under its cache directory, fetches into
it (on a webhook or a poll), and reads files, commit metadata and checkouts from the mirror. Credentials for a
remote are handed to git through `GIT_ASKPASS` (or an ssh key file) for the duration of one command, so they
never appear on a command line, in `.git/config` or in an error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from juanie.gitops.auth import auth_env, is_local, split_credentials
from juanie.gitops.git import GitError, redact, run_git, run_git_bytes

DEFAULT_POLL_INTERVAL = 60.0
"""Seconds between two polls of a repository that has no webhook (the issue's default)."""

_ZERO_SHA = "0" * 40
_FIELD = "\x1f"
_RECORD = "\x1e"


_MIRROR_LOCKS: dict[Path, threading.RLock] = {}
_MIRROR_LOCKS_GUARD = threading.Lock()


def _mirror_lock(mirror: Path) -> threading.RLock:
    """One lock per mirror, shared by every SourceRepo of the same URL in this process: the poller, a run's checkout
    and the API each make their own SourceRepo, and two `git fetch` into one mirror at once fail on git's ref locks
    ("cannot lock ref 'refs/heads/main': is at X but expected Y")."""
    with _MIRROR_LOCKS_GUARD:
        return _MIRROR_LOCKS.setdefault(mirror, threading.RLock())


class SourceError(Exception):
    """The repository or a ref in it cannot be used; the message says which and why."""


@dataclass(frozen=True)
class CommitInfo:
    """What the UI and the events show about one commit."""

    sha: str
    branch: str | None
    author: str
    email: str
    message: str
    timestamp: float

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0]

    @property
    def short(self) -> str:
        return self.sha[:7]


@dataclass(frozen=True)
class BranchUpdate:
    """A branch that moved (or appeared) since the last look; `commits` are newest first, at most a page."""

    branch: str
    before: str | None
    after: str
    commits: list[CommitInfo] = field(default_factory=list)


def changed_branches(known: Mapping[str, str], current: Mapping[str, str]) -> dict[str, tuple[str | None, str]]:
    """Branches whose head differs from what was known: branch -> (before or None, after). Pure."""
    return {branch: (known.get(branch), sha) for branch, sha in sorted(current.items()) if known.get(branch) != sha}


class SourceRepo:
    """A bare mirror of one source repository under `cache_dir`.

    `credentials` is either `user:token`, a bare token (sent with the user name `git`, which GitHub and GitLab
    accept for tokens), or an ssh private key (PEM/OpenSSH text) for `git@host:path` URLs.
    """

    def __init__(self, url_or_path: str | Path, cache_dir: Path | str, credentials: str | None = None):
        raw = str(url_or_path)
        if not raw.strip():
            raise SourceError("source repository: expected a local path or a URL, got an empty string")
        url, embedded = split_credentials(raw)
        if is_local(url):
            url = str(Path(url).expanduser().resolve())
        self.url = url
        self._credentials = credentials if credentials is not None else embedded
        self.cache_dir = Path(cache_dir)
        digest = hashlib.sha256(url.encode()).hexdigest()[:12]
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git"))[:40]
        self.mirror = self.cache_dir / f"{name or 'repo'}-{digest}.git"
        self._lock = _mirror_lock(self.mirror)

    def __repr__(self) -> str:
        return f"SourceRepo({redact(self.url)!r})"

    # -- remote access -------------------------------------------------------------------------------------

    def _auth_env(self) -> contextlib.AbstractContextManager[dict[str, str]]:
        return auth_env(self.url, self._credentials, self.cache_dir)

    def _ensure_mirror(self) -> None:
        if (self.mirror / "HEAD").exists():
            return
        self.mirror.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".init-", dir=self.mirror.parent))
        try:
            run_git(["init", "--bare", "--quiet", str(tmp)], cwd=None)
            run_git(["config", "remote.origin.url", self.url], cwd=tmp)
            run_git(["config", "--replace-all", "remote.origin.fetch", "+refs/heads/*:refs/heads/*"], cwd=tmp)
            run_git(["config", "--add", "remote.origin.fetch", "+refs/tags/*:refs/tags/*"], cwd=tmp)
            run_git(["config", "gc.auto", "0"], cwd=tmp)
            os.replace(tmp, self.mirror)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def fetch(self, timeout: float = 300.0) -> dict[str, str]:
        """Bring the mirror up to date with the remote; return every branch's head (branch -> sha)."""
        with self._lock:
            self._ensure_mirror()
            with self._auth_env() as env:
                try:
                    run_git(["fetch", "--prune", "--quiet", "origin"], cwd=self.mirror, env=env, timeout=timeout)
                except GitError as exc:
                    raise SourceError(f"cannot fetch {redact(self.url)}: {exc.stderr or exc}") from exc
            return self.branches()

    def branches(self) -> dict[str, str]:
        """Branch heads as of the last fetch (no network)."""
        if not (self.mirror / "HEAD").exists():
            return {}
        out = run_git(["for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads"], cwd=self.mirror)
        heads = {}
        for line in out.splitlines():
            name, _, sha = line.rpartition(" ")
            heads[name] = sha
        return heads

    def new_commits(self, known: Mapping[str, str], limit: int = 50) -> list[BranchUpdate]:
        """Fetch, then describe every branch that moved since `known` (a poller's push events)."""
        current = self.fetch()
        updates = []
        for branch, (before, after) in changed_branches(known, current).items():
            has_before = before is not None and before != _ZERO_SHA and self._has_commit(before)
            rev_range = [f"{before}..{after}"] if has_before else [after, "-n", "1"]
            shas = run_git(["rev-list", f"--max-count={limit}", *rev_range], cwd=self.mirror).split()
            commits = [self._commit_info(sha, branch) for sha in shas]
            updates.append(BranchUpdate(branch=branch, before=before, after=after, commits=commits))
        return updates

    # -- reading -------------------------------------------------------------------------------------------

    def _require_mirror(self) -> None:
        if not (self.mirror / "HEAD").exists():
            raise SourceError(f"{redact(self.url)} has not been fetched yet; call fetch() first")

    def _has_commit(self, sha: str) -> bool:
        try:
            run_git(["cat-file", "-e", f"{sha}^{{commit}}"], cwd=self.mirror)
            return True
        except GitError:
            return False

    def resolve(self, ref: str) -> str:
        """A branch, tag or (abbreviated) sha -> the full commit sha; unknown refs raise `SourceError`."""
        self._require_mirror()
        if not ref or ref.startswith("-"):
            raise SourceError(f"invalid ref {ref!r}: expected a branch, tag or commit sha")
        try:
            return run_git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=self.mirror)
        except GitError as exc:
            raise SourceError(
                f"unknown ref {ref!r} in {redact(self.url)} (known branches: "
                f"{', '.join(sorted(self.branches())) or 'none'})"
            ) from exc

    def read_file(self, sha: str, path: str) -> str | None:
        """The text of `path` at commit `sha`, or None when the file does not exist there."""
        self._require_mirror()
        spec = f"{self.resolve(sha)}:{path.lstrip('/')}"
        try:
            run_git(["cat-file", "-e", spec], cwd=self.mirror)
        except GitError:
            return None
        return run_git_bytes(["cat-file", "blob", spec], cwd=self.mirror).decode("utf-8", "replace")

    def commit_info(self, sha: str) -> CommitInfo:
        """Author, message and time of one commit; `branch` is one whose head it is (or that holds it)."""
        self._require_mirror()
        full = self.resolve(sha)
        return self._commit_info(full, self._branch_of(full))

    def _branch_of(self, sha: str) -> str | None:
        heads = run_git(
            ["for-each-ref", "--points-at", sha, "--format=%(refname:short)", "refs/heads"], cwd=self.mirror
        ).split()
        if not heads:
            heads = run_git(
                ["for-each-ref", "--contains", sha, "--format=%(refname:short)", "refs/heads"],
                cwd=self.mirror,
            ).split()
        for preferred in ("main", "master"):
            if preferred in heads:
                return preferred
        return heads[0] if heads else None

    def _commit_info(self, sha: str, branch: str | None) -> CommitInfo:
        fmt = _FIELD.join(["%H", "%an", "%ae", "%at", "%B"]) + _RECORD
        out = run_git(["show", "-s", f"--format={fmt}", sha], cwd=self.mirror)
        full, author, email, ts, message = out.rstrip(_RECORD + "\n").split(_FIELD, 4)
        return CommitInfo(
            sha=full, branch=branch, author=author, email=email, message=message.strip(), timestamp=float(ts)
        )

    def checkout(self, sha: str, dest: Path | str) -> Path:
        """Write the tree of commit `sha` into `dest` (which must be absent or empty); no `.git` inside.

        A private index file keeps concurrent checkouts of the same mirror independent.
        """
        self._require_mirror()
        full = self.resolve(sha)
        dest = Path(dest)
        if dest.exists() and any(dest.iterdir()):
            raise SourceError(f"checkout destination {dest} is not empty")
        dest.mkdir(parents=True, exist_ok=True)
        fd, index = tempfile.mkstemp(prefix=".index-", dir=self.mirror)
        os.close(fd)
        os.unlink(index)  # git wants to create the index itself
        env = {"GIT_INDEX_FILE": index}
        try:
            run_git(["read-tree", full], cwd=self.mirror, env=env)
            run_git(
                [f"--work-tree={dest.resolve()}", "checkout-index", "--all", "--force"],
                cwd=self.mirror,
                env=env,
            )
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(index)
        return dest


async def poll(
    repo: SourceRepo,
    known: dict[str, str],
    on_updates: Callable[[list[BranchUpdate]], Awaitable[None] | None],
    stop: asyncio.Event,
    interval: float = DEFAULT_POLL_INTERVAL,
    on_error: Callable[[Exception], None] | None = None,
) -> None:
    """Notice new commits without a webhook: fetch every `interval` seconds until `stop` is set.

    `known` is updated in place after `on_updates` returns, so a crash between the two re-reports the same
    commits (at least once) rather than losing them; callers deduplicate by sha. A failing fetch is reported
    to `on_error` and retried at the next tick.
    """
    if interval <= 0:
        raise SourceError(f"poll interval must be a positive number of seconds, got {interval}")
    while not stop.is_set():
        try:
            updates = await asyncio.to_thread(repo.new_commits, dict(known))
            if updates:
                result = on_updates(updates)
                if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                    await result
                known.update({u.branch: u.after for u in updates})
        except (SourceError, GitError) as exc:
            if on_error is not None:
                on_error(exc)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
