"""What an untrusted process may see, and the bubblewrap command line that makes it so — pure.

A jail starts from an empty root (bubblewrap's tmpfs) and adds back only what a build or a service needs: the
system (`/usr`, `/etc`, `/opt`, read-only), the Python toolchain, a private `/proc` of its own pid namespace, a
minimal `/dev`, its own `/tmp`, and the few directories it owns read-write (a run's workspace, a project's
release). Everything else — the server's data directory above all — is simply not there. Paths keep their host
names inside, so a virtualenv's absolute shebangs and a `PATH` built outside work unchanged.

When the server runs as root the process inside is given the project's own unprivileged uid (`setpriv`), so that
even an escape from the mount namespace meets file permissions; otherwise an unprivileged user namespace keeps the
server's uid, and the mount and pid namespaces are the whole wall.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

SYSTEM_READONLY = ("/usr", "/etc", "/opt", "/srv")
"""Read-only everywhere (GitHub's and GitLab's runners see the same): compilers, CA certificates, local mirrors."""

MERGED_USR_LINKS = {"/bin": "usr/bin", "/sbin": "usr/sbin", "/lib": "usr/lib", "/lib64": "usr/lib64"}
"""Debian's merged /usr: these are symlinks on the host and must be inside too."""

KEPT_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")
"""Held only by bubblewrap's own setup as root, so that `setpriv` can drop to the project's uid; the command itself
runs with no capability at all (empty bounding set, no_new_privs)."""


@dataclass(frozen=True)
class Identity:
    """The unprivileged user a project's code runs as (only when the server runs as root)."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class Jail:
    """One sandboxed command's view of the file system."""

    cwd: str
    writable: tuple[str, ...] = ()
    """Directories bound read-write at their own path (the process must own them)."""
    readable: tuple[str, ...] = ()
    """Extra directories or files bound read-only (the toolchain, a pip config file)."""
    hidden: tuple[str, ...] = ()
    """Directories replaced by an empty tmpfs even where a read-only tree would show them (the data directory)."""
    die_with_parent: bool = True
    """Pipeline steps die with the server; services do not (the data plane outlives the control plane)."""
    host_links: tuple[tuple[str, str], ...] = tuple(MERGED_USR_LINKS.items())
    """(path, target) symlinks to recreate; the caller passes the ones that are symlinks on this host."""


def _norm(path: str) -> PurePosixPath:
    return PurePosixPath(path)


def _within(path: PurePosixPath, root: PurePosixPath) -> bool:
    return path == root or root in path.parents


def _covered(path: PurePosixPath, readonly: Iterable[PurePosixPath], masked: Iterable[PurePosixPath]) -> bool:
    """Whether `path` already exists inside the jail: shown by a read-only bind and not under a masking tmpfs."""
    return any(_within(path, r) for r in readonly) and not any(_within(path, m) and path != m for m in masked)


def _parents(
    target: PurePosixPath, readonly: list[PurePosixPath], masked: list[PurePosixPath], made: set[PurePosixPath]
) -> list[str]:
    """`--dir` for each missing ancestor of a mount point: traversable by the sandboxed uid (bubblewrap would make
    them 0700) but not listable, so the skeleton of a hidden tree shows not even its own names."""
    out: list[str] = []
    for parent in reversed(target.parents):
        if parent == PurePosixPath("/") or parent in made or _covered(parent, readonly, masked) or parent in masked:
            continue
        made.add(parent)
        out += ["--perms", "0711", "--dir", str(parent)]
    return out


def bwrap_argv(
    command: list[str],
    jail: Jail,
    *,
    identity: Identity | None,
    system: tuple[str, ...] = SYSTEM_READONLY,
    bwrap: str = "bwrap",
    setpriv: str = "/usr/bin/setpriv",
    resolv_conf: str | None = None,
) -> list[str]:
    """The full argv that runs `command` inside `jail`.

    `identity` is set when the server is root: bubblewrap then needs no user namespace and `setpriv` drops to the
    project's uid; without it, bubblewrap makes an unprivileged user namespace. `resolv_conf` is the real file when
    `/etc/resolv.conf` is a symlink out of `/etc`. The order matters: read-only binds first, then the masks over
    the data directory, then the writable binds on top.
    """
    readonly = [_norm(p) for p in (*system, *jail.readable)]
    # Only a directory that a read-only tree would show needs a mask; elsewhere it is simply absent.
    masked = [_norm(h) for h in jail.hidden if _covered(_norm(h), readonly, [])]
    made: set[PurePosixPath] = {PurePosixPath("/tmp")}
    argv = [bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if identity is None:
        argv.append("--unshare-user")
    if jail.die_with_parent:
        argv.append("--die-with-parent")
    for path in system:
        argv += ["--ro-bind-try", path, path]
    for link, target in jail.host_links:
        argv += ["--symlink", target, link]
    if resolv_conf:
        argv += [*_parents(_norm(resolv_conf), readonly, masked, made), "--ro-bind-try", resolv_conf, resolv_conf]
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm"]
    argv += ["--perms", "1777", "--tmpfs", "/tmp"]
    for path in jail.readable:
        argv += [*_parents(_norm(path), readonly, masked, made), "--ro-bind", path, path]
    for path in masked:
        argv += ["--tmpfs", str(path)]
    for path in jail.writable:
        argv += [*_parents(_norm(path), readonly, masked, made), "--bind", path, path]
    argv += ["--chdir", jail.cwd]
    if identity is not None:
        for cap in KEPT_CAPS:
            argv += ["--cap-add", cap]
        argv += ["--", setpriv, f"--reuid={identity.uid}", f"--regid={identity.gid}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]  # fmt: skip
    argv += ["--", *command]
    return argv
