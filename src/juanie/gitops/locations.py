"""Where a project's repositories may live, checked before git is pointed at them.

A project's `repo_url` and `gitops_url` name a remote (`https://`, `ssh://`, `git://`, `user@host:path`) or a path
on the server's own disk (a plain path or `file://`). A local path makes the server read whatever git repository it
can reach — its own data directory included: other projects' mirrors, GitOps history, releases. So a local path is
for installation admins only, and only under a directory the operator listed in `JUANIE_LOCAL_REPO_ROOTS`; the data
directory is never allowed, even under a root.

The check runs when a URL is set (the API) and again each time the server is about to use one (`source_repo`,
`GitOpsRepos.repo`), so a URL changed by other means gains nothing. It judges real paths: symlinks, and git's own
redirections (a `.git` file, `commondir`, object alternates, the `.git` suffixes upload-pack tries) are followed,
and git is then handed the real path rather than the string that was stored.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from juanie.domain.errors import Forbidden, Invalid
from juanie.gitops.auth import is_local, split_credentials

REMOTE_SCHEMES = frozenset({"http", "https", "ssh", "git", "git+ssh", "ssh+git"})
_HELPER = re.compile(r"^(?P<helper>[A-Za-z][A-Za-z0-9+.-]*)::")  # git's `<transport>::<address>` remote helpers
_UPLOAD_PACK_SUFFIXES = ("/.git", "", ".git/.git", ".git")  # what `git upload-pack <path>` tries, in git's order
_MAX_HOPS = 32
_REMOTE_HINT = "use a remote URL (https://…, ssh://… or git@host:path)"


def local_path(url: str, field: str = "repo_url") -> Path | None:
    """The path on this host that `url` makes git read (a plain path or `file://`), or None for a remote.

    URLs git would hand to a remote helper (`ext::…`, `fd::…`) or to a scheme other than the usual remotes are
    refused here for everyone: they are not repositories but ways to run or open things on the server.
    """
    bare, _ = split_credentials(url)
    helper = _HELPER.match(bare)
    if helper:
        raise Invalid(f"{field}: git remote helpers ({helper.group('helper')}::) are not allowed; {_REMOTE_HINT}",
                      location=field)
    if is_local(bare):
        return Path(bare).expanduser()
    if "://" not in bare:  # scp-like `user@host:path`: ssh
        return None
    parts = urlsplit(bare)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise Invalid(f"{field}: a file:// URL names a path on this host (file:///path), not "
                          f"{parts.netloc!r}", location=field)
        return Path(unquote(parts.path))
    if scheme not in REMOTE_SCHEMES:
        raise Invalid(f"{field}: {scheme}:// is not a git remote Juanie uses; {_REMOTE_HINT}", location=field)
    return None


@dataclass(frozen=True)
class RepoLocations:
    """One server's rule: its data directory, and the roots local repositories may live under."""

    data_dir: Path
    roots: tuple[Path, ...] = ()

    def check(self, url: str, *, field: str = "repo_url", is_admin: bool = True) -> str:
        """`url` as git should be given it (a local path becomes its real path), if this server may use it.

        `is_admin` is whether the person setting the URL is an installation admin. The server's own uses keep the
        default: whoever set the URL, a local path is judged on the roots alone. Raises Forbidden or Invalid.
        """
        path = local_path(url, field) if url else None
        if path is None:
            return url
        if not is_admin:
            raise Forbidden(f"{field}: a local path or file:// URL needs an installation admin; {_REMOTE_HINT}",
                            location=field)
        try:
            real = Path(os.path.realpath(path))
            places = (real, *git_dirs(real, field))
        except OSError as exc:  # a name too long, a loop of links: not a path git could read either
            why = exc.strerror or exc
            raise Invalid(f"{field}: {url[:80]!r} is not a usable path ({why})", location=field) from None
        for place in places:
            self._allowed(place, url, field)
        return str(real)

    def _allowed(self, place: Path, url: str, field: str) -> None:
        what = url if str(place) == url else f"{url} (which git would read as {place})"
        if _within(place, Path(os.path.realpath(self.data_dir))):
            raise Invalid(f"{field}: {what} is inside Juanie's data directory, which is never a repository; "
                          "use a repository outside it", location=field)
        roots = [Path(os.path.realpath(r)) for r in self.roots]
        if not any(_within(place, root) for root in roots):
            listed = os.pathsep.join(str(r) for r in roots) or "empty"
            raise Invalid(f"{field}: {what} is not under a directory of JUANIE_LOCAL_REPO_ROOTS (now {listed}); "
                          f"add its directory there and restart the server, or {_REMOTE_HINT}", location=field)


def git_dirs(path: Path, field: str = "repo_url") -> list[Path]:
    """The directories git may read when fetching or cloning from `path`, as real paths.

    The candidates `git upload-pack` tries (`path/.git`, `path`, `path.git/.git`, `path.git`) that exist, and
    every place a `.git` file's `gitdir:`, a `commondir` or an object alternate points to — whether it exists yet
    or not — recursively. More than a few dozen is not a repository anyone needs but a way to hide one path among
    many: refused.
    """
    todo = [(Path(os.path.realpath(str(path) + suffix)), False) for suffix in _UPLOAD_PACK_SUFFIXES]
    found: list[Path] = []
    while todo:
        if len(found) >= _MAX_HOPS:
            raise Invalid(f"{field}: {path} makes git read more than {_MAX_HOPS} directories (alternates, "
                          "worktrees); refused", location=field)
        place, named = todo.pop(0)  # named: a file pointed here, so it counts even if it is not there (yet)
        if place.is_file():  # a `.git` file (or a link to one): "gitdir: <path>"
            text = _read(place)
            if text.startswith("gitdir:"):
                todo.append((_redirect(place.parent, text.removeprefix("gitdir:")), True))
            continue
        if place in found or not (named or place.is_dir()):
            continue
        found.append(place)
        common = _read(place / "commondir").strip()
        if common:
            todo.append((_redirect(place, common), True))
        for objects in (place / "objects", place):  # a git dir's objects, or an alternate (itself an objects dir)
            for line in _read(objects / "info" / "alternates").splitlines():
                if line.strip() and not line.startswith("#"):
                    todo.append((_redirect(objects, line), True))
    return found


def _redirect(base: Path, target: str) -> Path:
    """A path git reads from a file, relative to `base` unless absolute, as a real path."""
    return Path(os.path.realpath(base / target.strip()))


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except (OSError, ValueError):
        return ""


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
