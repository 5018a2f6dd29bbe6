"""A project's GitOps repository: the desired state of every environment, one commit per change.

Juanie writes through a private clone (`work_dir`) and pushes to the repository (`path_or_url`: a local bare
repository by default, or a remote). Writers are serialised twice — a lock per work dir in this process and an
`fcntl` lock file across processes — and a push that loses a race with another writer is rebased and
retried, never forced, so no one's commit is ever lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from juanie.gitops.auth import auth_env, is_local, split_credentials
from juanie.gitops.git import GitError, redact, run_git, run_git_bytes
from juanie.gitops.message import CommitMessage, GitOpsCommit, parse_commit

SHARED_DIRS = ("base/", "monitoring/", ".github/")
_ENV_NAME = re.compile(r"^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$")
_FIELD, _RECORD = "\x1f", "\x1e"
_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()
_README = (
    "# GitOps repository\n\n"
    "Managed by Juanie. `rendered/<env>/` holds the plain manifests each environment runs; `base/` and\n"
    "`overlays/<env>/` are the Kustomize view of the same state, `flux/<env>.yaml` points Flux at it.\n"
    "Every commit names its release, environment, actor and reason in git trailers.\n"
)


class GitOpsError(Exception):
    """A GitOps operation could not be done; the message says what and why."""


def owned_paths(env: str, files: Mapping[str, object]) -> list[str]:
    """Path prefixes `write_tree` replaces for `env`. Pure.

    The environment's own paths are always replaced; a shared directory only when the new files contain it,
    so writing one environment never deletes the shared base another environment was rendered with.
    """
    owned = [f"rendered/{env}/", f"overlays/{env}/", f"flux/{env}.yaml"]
    owned += [d for d in SHARED_DIRS if any(p.startswith(d) for p in files)]
    return owned


def check_relpath(path: str) -> str:
    """A repository-relative path that stays inside the repository and out of `.git`. Pure."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts) or parts[0] == ".git":
        raise GitOpsError(
            f"invalid GitOps file path {path!r}: expected a relative path like 'rendered/dev/app.yaml' "
            "without '..', empty parts or .git"
        )
    return path


def _is_rejection(exc: GitError) -> bool:
    text = exc.stderr.lower()
    return any(s in text for s in ("rejected", "non-fast-forward", "fetch first", "failed to update ref"))


class GitOpsRepo:
    """Read and write one GitOps repository through a private clone in `work_dir`."""

    def __init__(
        self,
        path_or_url: str | Path,
        work_dir: Path | str,
        author: tuple[str, str] = ("Juanie", "juanie@localhost"),
        branch: str = "main",
        credentials: str | None = None,
        push_retries: int = 5,
    ):
        url, embedded = split_credentials(str(path_or_url))
        self.url = str(Path(url).expanduser().resolve()) if is_local(url) else url
        self._credentials = credentials if credentials is not None else embedded
        self.work_dir = Path(work_dir).resolve()
        self.author = author
        self.branch = branch
        self.push_retries = push_retries
        self.last_push_attempts = 0
        key = str(self.work_dir)
        with _PROCESS_LOCKS_GUARD:
            self._thread_lock = _PROCESS_LOCKS.setdefault(key, threading.Lock())
        self._lock_file = self.work_dir.parent / f".{self.work_dir.name}.lock"

    def __repr__(self) -> str:
        return f"GitOpsRepo({redact(self.url)!r})"

    # -- plumbing ------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time per work dir: threads of this process, then other processes."""
        with self._thread_lock:
            self._lock_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self._lock_file, "a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)

    def _identity(self) -> dict[str, str]:
        name, email = self.author
        return {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }

    def _git(self, *args: str, input: str | None = None, remote: bool = False) -> str:
        if not remote:
            return run_git(list(args), cwd=self.work_dir, env=self._identity(), input=input)
        with auth_env(self.url, self._credentials, self.work_dir.parent) as extra:
            return run_git(list(args), cwd=self.work_dir, env={**self._identity(), **extra}, input=input)

    def _fetch(self) -> None:
        if not (self.work_dir / ".git").exists():
            self._ensure_unlocked()  # first use: clone (and create) on demand
            return
        self._git("fetch", "--quiet", "--prune", "origin", remote=True)

    def _remote_ref(self) -> str:
        return f"origin/{self.branch}"

    def _sync(self) -> None:
        """Make the work dir exactly the remote branch: nothing local survives from an earlier failure."""
        self._fetch()
        with contextlib.suppress(GitError):
            self._git("rebase", "--abort")
        with contextlib.suppress(GitError):
            self._git("revert", "--abort")
        self._git("checkout", "--quiet", "-B", self.branch, self._remote_ref())
        self._git("reset", "--quiet", "--hard", self._remote_ref())
        self._git("clean", "-qfdx")

    # -- setup ---------------------------------------------------------------------------------------------

    def ensure(self) -> str:
        """Create the repository (local bare, initial commit) and the clone if missing; return head."""
        with self._locked():
            self._ensure_unlocked()
            return self._git("rev-parse", "HEAD")

    def _ensure_unlocked(self) -> None:
        if is_local(self.url) and not Path(self.url).exists():
            Path(self.url).parent.mkdir(parents=True, exist_ok=True)
            run_git(["init", "--bare", "--quiet", f"--initial-branch={self.branch}", self.url], cwd=None)
        if not (self.work_dir / ".git").exists():
            if self.work_dir.exists():
                shutil.rmtree(self.work_dir)
            self.work_dir.parent.mkdir(parents=True, exist_ok=True)
            with auth_env(self.url, self._credentials, self.work_dir.parent) as extra:
                try:
                    run_git(["clone", "--quiet", self.url, str(self.work_dir)], cwd=None, env=extra)
                except GitError as exc:
                    where = redact(self.url)
                    raise GitOpsError(f"cannot clone GitOps repository {where}: {exc.stderr}") from exc
            self._git("config", "commit.gpgsign", "false")
            self._git("config", "core.autocrlf", "false")
        self._fetch()
        try:
            self._git("rev-parse", "--verify", "--quiet", self._remote_ref())
        except GitError:
            self._initial_commit()
        self._sync()

    def _initial_commit(self) -> None:
        self._git("checkout", "--quiet", "--orphan", self.branch)
        (self.work_dir / "README.md").write_text(_README)
        self._git("add", "README.md")
        self._git("commit", "--quiet", "-m", "initialise GitOps repository")
        self._push(redo=lambda: None)

    # -- writing -------------------------------------------------------------------------------------------

    def _apply(self, env: str, files: Mapping[str, str | bytes]) -> None:
        root = self.work_dir
        for prefix in owned_paths(env, files):
            target = root / prefix.rstrip("/")
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        for rel, content in sorted(files.items()):
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        self._git("add", "--all")

    def _staged_changes(self) -> bool:
        try:
            self._git("diff", "--cached", "--quiet")
            return False
        except GitError as exc:
            if exc.returncode == 1:
                return True
            raise

    def _commit(self, message: CommitMessage) -> None:
        self._git("commit", "--quiet", "--file=-", input=message.render())

    def _push(self, redo: Callable[[], bool | None]) -> None:
        """Push HEAD; when another writer got there first, rebase onto theirs and push again (never force).

        If the rebase conflicts, start from the remote again and `redo` the change (re-apply files, commit);
        `redo` returns False when, on the new base, there is nothing left to commit.
        """
        for attempt in range(1, self.push_retries + 1):
            self.last_push_attempts = attempt
            try:
                self._git("push", "--quiet", "origin", f"HEAD:refs/heads/{self.branch}", remote=True)
                self._fetch()
                return
            except GitError as exc:
                if not _is_rejection(exc):
                    raise GitOpsError(f"cannot push to {redact(self.url)}: {exc.stderr}") from exc
            self._fetch()
            try:
                self._git("rebase", "--quiet", self._remote_ref())
            except GitError:
                self._sync()
                if redo() is False:
                    return
        raise GitOpsError(
            f"push to {redact(self.url)} was rejected {self.push_retries} times: other writers keep winning; "
            "try again later"
        )

    def write_tree(self, env: str, files: Mapping[str, str | bytes], message: CommitMessage) -> str:
        """Replace what the renderer owns for `env` with `files` and commit; return the new head.

        Returns the current head without committing when the tree would not change.
        """
        if not _ENV_NAME.match(env):
            raise GitOpsError(f"invalid environment name {env!r}: expected lowercase letters, digits, '-' or '_'")
        for rel in files:
            check_relpath(rel)

        def redo() -> bool:
            self._apply(env, files)
            if not self._staged_changes():
                return False
            self._commit(message)
            return True

        with self._locked():
            self._sync()
            if not redo():
                return self._git("rev-parse", "HEAD")
            self._push(redo)
            return self._git("rev-parse", "HEAD")

    def revert(self, sha: str, message: CommitMessage) -> str:
        """Commit the inverse of `sha` on top of the branch (history is kept); return the new head."""
        self._check_rev(sha)

        def redo() -> bool:
            try:
                self._git("revert", "--no-commit", sha)
            except GitError as exc:
                with contextlib.suppress(GitError):
                    self._git("revert", "--abort")
                raise GitOpsError(
                    f"cannot revert {sha[:12]}: later commits changed the same files; "
                    f"write the desired tree instead ({exc.stderr.splitlines()[-1] if exc.stderr else ''})"
                ) from exc
            if not self._staged_changes():
                return False
            self._commit(message)
            return True

        with self._locked():
            self._sync()
            try:
                self._git("cat-file", "-e", f"{sha}^{{commit}}")
            except GitError as exc:
                raise GitOpsError(f"cannot revert {sha!r}: no such commit in {redact(self.url)}") from exc
            if not redo():
                return self._git("rev-parse", "HEAD")
            self._push(redo)
            return self._git("rev-parse", "HEAD")

    # -- reading -------------------------------------------------------------------------------------------

    @staticmethod
    def _check_rev(rev: str) -> None:
        if not rev or rev.startswith("-") or any(c.isspace() for c in rev):
            raise GitOpsError(f"invalid revision {rev!r}: expected a commit sha or ref")

    def _rev(self, rev: str) -> str:
        self._check_rev(rev)
        try:
            return self._git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        except GitError as exc:
            raise GitOpsError(f"unknown revision {rev!r} in {redact(self.url)}") from exc

    def head(self) -> str:
        with self._locked():
            self._fetch()
            return self._rev(self._remote_ref())

    def log(self, env: str | None = None, limit: int = 50) -> list[GitOpsCommit]:
        """Newest first; with `env`, only commits whose `Juanie-Environment` trailer names it."""
        fmt = _FIELD.join(["%H", "%P", "%an", "%ae", "%at", "%B"]) + _RECORD
        args = ["log", f"--max-count={max(1, limit)}", f"--format={fmt}"]
        if env is not None:
            args += ["--extended-regexp", f"--grep=^Juanie-Environment: {re.escape(env)}$"]
        with self._locked():
            self._fetch()
            out = self._git(*args, self._remote_ref())
        commits = []
        for record in out.split(_RECORD):
            record = record.strip("\n")
            if not record:
                continue
            sha, parents, author, email, ts, message = record.split(_FIELD, 5)
            commits.append(parse_commit(sha, tuple(parents.split()), author, email, float(ts), message))
        return commits

    def diff(self, a: str, b: str, path: str | None = None) -> str:
        """Unified diff from revision `a` to `b`, optionally limited to one path or directory."""
        with self._locked():
            self._fetch()
            ra, rb = self._rev(a), self._rev(b)
            args = ["diff", "--no-color", "--no-ext-diff", ra, rb]
            if path:
                args += ["--", check_relpath(path.rstrip("/"))]
            out = run_git_bytes(args, cwd=self.work_dir).decode("utf-8", "replace")
            return out

    def read(self, sha: str, path: str) -> str:
        """The text of `path` at revision `sha`."""
        with self._locked():
            self._fetch()
            rev = self._rev(sha)
            try:
                return run_git_bytes(["show", f"{rev}:{check_relpath(path)}"], cwd=self.work_dir).decode()
            except GitError as exc:
                raise GitOpsError(f"{path} does not exist at {rev[:12]}") from exc

    def tree(self, sha: str) -> dict[str, bytes]:
        """Every file at revision `sha` with its exact bytes (what byte-for-byte comparisons use)."""
        with self._locked():
            self._fetch()
            rev = self._rev(sha)
            listing = run_git_bytes(["ls-tree", "-r", "-z", "--full-tree", rev], cwd=self.work_dir)
            entries = []
            for item in listing.split(b"\0"):
                if not item:
                    continue
                meta, _, name = item.partition(b"\t")
                _mode, kind, obj = meta.split()
                if kind == b"blob":
                    entries.append((name.decode(), obj.decode()))
            if not entries:
                return {}
            batch = run_git_bytes(
                ["cat-file", "--batch"],
                cwd=self.work_dir,
                input="".join(f"{o}\n" for _, o in entries).encode(),
            )
        files: dict[str, bytes] = {}
        pos = 0
        for name, _ in entries:
            header_end = batch.index(b"\n", pos)
            size = int(batch[pos:header_end].split()[2])
            start = header_end + 1
            files[name] = batch[start : start + size]
            pos = start + size + 1
        return files
