"""Local-engine artifacts: a release directory per service, addressed as `juanie.local/<project>/<service>:<sha12>`.

A release directory is the checkout (without `.git`) plus a virtualenv built from its requirements, with a
content hash of the source files. Services of one commit usually share one checkout and one requirements
file, so the directory is built once per (project, sha, requirements) under `_builds/` and each service's
`<releases_dir>/<project>/<service>/<sha12>` is a symlink to it. Built directories are immutable: a release
is promoted as-is, never rebuilt.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

IMAGE_HOST = "juanie.local"
METADATA = ".juanie-release.json"
BUILDS = "_builds"
_IMAGE = re.compile(rf"^{re.escape(IMAGE_HOST)}/(?P<project>[^/:]+)/(?P<service>[^/:]+):(?P<sha>[0-9a-f]{{7,40}})$")
_EXCLUDE_TOP = {".git", "venv", METADATA}


class PackageError(Exception):
    """A release directory could not be built; the message says which step failed and why."""


@dataclass(frozen=True)
class ReleaseArtifact:
    path: Path
    """The directory the local engine runs the service from (`<releases_dir>/<project>/<service>/<sha12>`)."""
    content_hash: str
    image: str
    requirements_hash: str = ""

    @property
    def venv(self) -> Path:
        return self.path / "venv"


def image_name(project: str, service: str, sha: str) -> str:
    return f"{IMAGE_HOST}/{project}/{service}:{sha[:12]}"


def parse_image(image: str) -> tuple[str, str, str]:
    """`juanie.local/<project>/<service>:<sha>` -> (project, service, sha12). Pure."""
    m = _IMAGE.match(image)
    if not m:
        raise PackageError(f"not a local-engine image: {image!r} (expected {IMAGE_HOST}/<project>/<service>:<sha>)")
    return m.group("project"), m.group("service"), m.group("sha")[:12]


def release_path(releases_dir: Path, image: str) -> Path:
    """Where the local engine finds the release directory of `image`."""
    project, service, sha12 = parse_image(image)
    return Path(releases_dir) / project / service / sha12


def hash_entries(entries: list[tuple[str, bytes]]) -> str:
    """sha256 over sorted (path, bytes) pairs, each length-prefixed so no two trees collide. Pure."""
    h = hashlib.sha256()
    for path, data in sorted(entries):
        name = path.encode()
        h.update(len(name).to_bytes(4, "big") + name + len(data).to_bytes(8, "big") + data)
    return "sha256:" + h.hexdigest()


def _source_files(root: Path) -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if rel_dir == Path("."):
            dirnames[:] = [d for d in dirnames if d not in _EXCLUDE_TOP]
        dirnames.sort()
        for name in sorted(filenames):
            rel = (rel_dir / name).as_posix()
            if rel in _EXCLUDE_TOP:
                continue
            yield rel, Path(dirpath) / name


def content_hash(root: Path) -> str:
    """The content hash of a source tree (not its venv, not `.git`): what makes two releases the same."""
    entries = []
    for rel, path in _source_files(root):
        data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
        entries.append((rel, data))
    return hash_entries(entries)


def _requirement_lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def requirements_hash(checkout: Path, requirements: str) -> str:
    path = checkout / requirements
    data = path.read_bytes() if path.is_file() else b""
    return hashlib.sha256(data + f"\0{sys.version_info[:2]}".encode()).hexdigest()[:12]


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: list[str], what: str, env: Mapping[str, str], log: Callable[[str], None]) -> None:
    log("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, env=dict(env), capture_output=True, text=True, timeout=1800, check=False)
    for line in (proc.stdout + proc.stderr).splitlines():
        log(line)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise PackageError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail) or 'no output'}")


def build_release_dir(
    checkout: Path,
    dest: Path,
    requirements: str = "requirements.txt",
    cache_dir: Path | None = None,
    *,
    image: str = "",
    python: str | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> ReleaseArtifact:
    """Build (or reuse) one release directory: copy the checkout, create `venv/`, install requirements.

    Idempotent and safe to call concurrently: a file lock guards the build and the metadata file is written
    last, so a half-built directory from a crash is detected and rebuilt.
    """
    checkout, dest = Path(checkout), Path(dest)
    if not checkout.is_dir():
        raise PackageError(f"checkout {checkout} does not exist or is not a directory")
    req_hash = requirements_hash(checkout, requirements)
    with _file_lock(dest.parent / f".{dest.name}.lock"):
        meta_path = dest / METADATA
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            if image and image not in meta.get("images", []):
                meta["images"] = sorted({*meta.get("images", []), image})
                meta_path.write_text(json.dumps(meta, indent=2))
            return ReleaseArtifact(dest, meta["content_hash"], image, meta.get("requirements_hash", ""))
        if dest.exists():
            log(f"removing an incomplete release directory {dest}")
            shutil.rmtree(dest)
        shutil.copytree(checkout, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        digest = content_hash(dest)
        env = dict(os.environ)
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        if cache_dir is not None:
            env["PIP_CACHE_DIR"] = str(Path(cache_dir) / "pip")
        py = python or sys.executable
        _run([py, "-m", "venv", "--without-pip", str(dest / "venv")], "creating the virtualenv", env, log)
        req_file = dest / requirements
        if req_file.is_file() and _requirement_lines(req_file.read_text()):
            cmd = [
                py,
                "-m",
                "pip",
                "--python",
                str(dest / "venv" / "bin" / "python"),
                "install",
                "--no-input",
                "--progress-bar",
                "off",
                "-r",
                str(req_file),
            ]
            _run(cmd, f"pip install -r {requirements}", env, log)
        else:
            log(f"no requirements in {requirements}; the virtualenv stays empty")
        meta = {
            "content_hash": digest,
            "requirements": requirements,
            "requirements_hash": req_hash,
            "python": ".".join(map(str, sys.version_info[:3])),
            "created": time.time(),
            "images": [image] if image else [],
        }
        tmp = dest / f"{METADATA}.tmp"
        tmp.write_text(json.dumps(meta, indent=2))
        os.replace(tmp, meta_path)
        log(f"release directory ready: {dest} ({digest})")
        return ReleaseArtifact(dest, digest, image, req_hash)


def build_release(
    checkout: Path,
    releases_dir: Path,
    project: str,
    sha: str,
    services: Mapping[str, str],
    cache_dir: Path | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> dict[str, ReleaseArtifact]:
    """One artifact per service (`services`: name -> requirements path); one build per requirements file."""
    sha12 = sha[:12]
    if not re.fullmatch(r"[0-9a-f]{7,40}", sha):
        raise PackageError(f"invalid commit sha {sha!r}: expected 7-40 hex characters")
    artifacts = {}
    for service, requirements in sorted(services.items()):
        image = image_name(project, service, sha)
        parse_image(image)  # validates project and service names
        shared = Path(releases_dir) / project / BUILDS / f"{sha12}-{requirements_hash(checkout, requirements)}"
        built = build_release_dir(checkout, shared, requirements, cache_dir, image=image, log=log)
        link = release_path(releases_dir, image)
        link.parent.mkdir(parents=True, exist_ok=True)
        target = os.path.relpath(shared, link.parent)
        if link.is_symlink() and os.readlink(link) != target:
            link.unlink()
        if not link.exists():
            os.symlink(target, link)
        artifacts[service] = ReleaseArtifact(link, built.content_hash, image, built.requirements_hash)
    return artifacts


def _created(path: Path) -> float:
    try:
        return float(json.loads((path / METADATA).read_text())["created"])
    except (OSError, ValueError, KeyError):
        return path.lstat().st_mtime


def _protected_shas(protected: set[str]) -> set[str]:
    shas = set()
    for item in protected:
        with contextlib.suppress(PackageError):
            item = parse_image(item)[2]
        shas.add(item[:12])
    return shas


def gc_releases(releases_dir: Path, project: str, keep: int, protected: set[str]) -> list[Path]:
    """Remove all but the newest `keep` releases of each service, never one in `protected`.

    `protected` holds shas or image names of releases an environment runs or could roll back to. Shared
    builds are removed once no service links to them. Returns what was removed.
    """
    if keep < 0:
        raise PackageError(f"keep must be >= 0, got {keep}")
    root = Path(releases_dir) / project
    if not root.is_dir():
        return []
    safe = _protected_shas(protected)
    removed: list[Path] = []
    for service_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name != BUILDS):
        releases = sorted(service_dir.iterdir(), key=_created, reverse=True)
        for old in releases[keep:]:
            if old.name[:12] in safe:
                continue
            if old.is_symlink() or old.is_file():
                old.unlink()
            else:
                shutil.rmtree(old)
            removed.append(old)
    builds = root / BUILDS
    if builds.is_dir():
        linked = {p.resolve() for s in root.iterdir() if s.name != BUILDS and s.is_dir() for p in s.iterdir()}
        for build in sorted(p for p in builds.iterdir() if p.is_dir()):
            if build.resolve() not in linked and build.name[:12] not in safe:
                shutil.rmtree(build)
                removed.append(build)
    return removed


def main(argv: list[str] | None = None) -> int:
    """`python -m juanie.pipeline.package --project P --sha S --releases-dir D user=requirements.txt ...`

    The package stage runs this as an ordinary step, so its output lands in the step's log.
    """
    parser = argparse.ArgumentParser(prog="juanie.pipeline.package", description=main.__doc__)
    parser.add_argument("--project", required=True)
    parser.add_argument("--sha", required=True)
    parser.add_argument("--releases-dir", required=True, type=Path)
    parser.add_argument("--checkout", type=Path, default=Path.cwd())
    parser.add_argument("--cache-dir", type=Path, default=os.environ.get("JUANIE_CACHE_DIR"))
    parser.add_argument("services", nargs="+", help="service=requirements-path")
    args = parser.parse_args(argv)
    services = {}
    for item in args.services:
        name, _, req = item.partition("=")
        services[name] = req or "requirements.txt"
    try:
        built = build_release(
            args.checkout, args.releases_dir, args.project, args.sha, services, args.cache_dir, log=print
        )
    except PackageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for service, art in built.items():
        print(f"::juanie-image {service}={art.image}")
    print(
        json.dumps(
            {s: {"path": str(a.path), "image": a.image, "content_hash": a.content_hash} for s, a in built.items()}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
