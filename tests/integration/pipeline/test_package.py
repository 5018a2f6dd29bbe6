"""Release directories for the local engine: shared builds, venvs, content hashes, garbage collection."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from juanie.pipeline.executor import Executor
from juanie.pipeline.logs import LogStore
from juanie.pipeline.model import PipelineSpec, Stage, Step
from juanie.pipeline.package import (
    METADATA,
    PackageError,
    build_release,
    content_hash,
    gc_releases,
    image_name,
    parse_image,
    release_path,
)

SHA_A = "a" * 40
SHA_B = "b1" * 20
SHA_C = "c2" * 20


def make_wheel(dest: Path) -> Path:
    """A minimal pure-Python wheel (installed offline, no build step)."""
    wheel = dest / "tinylib-1.0-py3-none-any.whl"
    files = {
        "tinylib.py": "VALUE = 42\n",
        "tinylib-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinylib\nVersion: 1.0\n",
        "tinylib-1.0.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{name},,\n" for name in files) + "tinylib-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
        zf.writestr("tinylib-1.0.dist-info/RECORD", record)
    return wheel


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    co = tmp_path / "checkout"
    (co / "services" / "user").mkdir(parents=True)
    (co / "services" / "user" / "main.py").write_text("import tinylib\nprint(tinylib.VALUE)\n")
    (co / "requirements.txt").write_text("# no dependencies\n")
    (co / ".git").mkdir()
    (co / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return co


def test_services_share_one_build_per_requirements(checkout: Path, tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    built = build_release(checkout, releases, "shop", SHA_A, {"user": "requirements.txt", "order": "requirements.txt"})
    user, order = built["user"], built["order"]
    assert user.image == "juanie.local/shop/user:aaaaaaaaaaaa"
    assert user.path == releases / "shop" / "user" / "aaaaaaaaaaaa" == release_path(releases, user.image)
    assert user.path.resolve() == order.path.resolve()  # one shared build
    assert len(list((releases / "shop" / "_builds").iterdir())) == 2  # the build dir and its lock file
    assert not (user.path / ".git").exists()
    assert (user.path / "services" / "user" / "main.py").is_file()
    assert (user.venv / "bin" / "python").exists()
    meta = json.loads((user.path / METADATA).read_text())
    assert meta["content_hash"] == user.content_hash == content_hash(checkout)
    assert set(meta["images"]) == {user.image, order.image}


def test_content_hash_ignores_git_and_venv_and_tracks_bytes(checkout: Path) -> None:
    before = content_hash(checkout)
    (checkout / "venv").mkdir()
    (checkout / "venv" / "junk").write_text("x")
    (checkout / ".git" / "index").write_text("y")
    assert content_hash(checkout) == before
    (checkout / "services" / "user" / "main.py").write_text("changed\n")
    assert content_hash(checkout) != before


def test_requirements_are_installed_into_the_release_venv(checkout: Path, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path)
    (checkout / "services" / "user" / "requirements.txt").write_text(f"{wheel}\n")
    releases = tmp_path / "releases"
    built = build_release(
        checkout, releases, "shop", SHA_A, {"user": "services/user/requirements.txt"}, cache_dir=tmp_path / "cache"
    )
    out = subprocess.run(
        [str(built["user"].venv / "bin" / "python"), "services/user/main.py"],
        cwd=built["user"].path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "42"
    again = build_release(checkout, releases, "shop", SHA_A, {"user": "services/user/requirements.txt"})
    assert again["user"].content_hash == built["user"].content_hash


def test_a_broken_requirement_is_a_clear_error(checkout: Path, tmp_path: Path) -> None:
    (checkout / "requirements.txt").write_text(f"{tmp_path}/missing-1.0-py3-none-any.whl\n")
    with pytest.raises(PackageError, match=r"pip install -r requirements\.txt failed"):
        build_release(checkout, tmp_path / "releases", "shop", SHA_A, {"user": "requirements.txt"})
    with pytest.raises(PackageError, match="invalid commit sha"):
        build_release(checkout, tmp_path / "releases", "shop", "main", {"user": "requirements.txt"})


def test_gc_keeps_newest_and_protected_releases(checkout: Path, tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    for sha in (SHA_A, SHA_B, SHA_C):
        (checkout / "VERSION").write_text(sha)
        build_release(checkout, releases, "shop", sha, {"user": "requirements.txt"})
    removed = gc_releases(releases, "shop", keep=1, protected={image_name("shop", "user", SHA_A)})
    left = sorted(p.name for p in (releases / "shop" / "user").iterdir())
    assert left == sorted([SHA_A[:12], SHA_C[:12]])  # newest kept, A protected, B removed
    assert releases / "shop" / "user" / SHA_B[:12] in removed
    builds = sorted(p.name[:12] for p in (releases / "shop" / "_builds").iterdir() if p.is_dir())
    assert builds == sorted([SHA_A[:12], SHA_C[:12]])
    assert (release_path(releases, image_name("shop", "user", SHA_A)) / "VERSION").read_text() == SHA_A


def test_parse_image_rejects_foreign_references() -> None:
    assert parse_image("juanie.local/shop/user:0123456789abcdef") == ("shop", "user", "0123456789ab")
    with pytest.raises(PackageError, match="not a local-engine image"):
        parse_image("docker.io/library/nginx:1.27")


async def test_package_stage_runs_the_builder_as_a_step(checkout: Path, tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    executor = Executor(tmp_path / "ws", tmp_path / "cache", tmp_path / "art", releases_root=releases)
    logs = LogStore(tmp_path / "logs")
    step = Step(
        "release",
        (
            f"python3 -m juanie.pipeline.package --project shop --sha {SHA_B} --releases-dir {releases} "
            "user=requirements.txt order=requirements.txt",
        ),
        timeout=300,
    )
    result = await executor.run(
        "pk1",
        checkout,
        PipelineSpec((Stage("package", (step,)),)),
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"},
        log_sink=logs.writer("pk1"),
        project="shop",
    )
    assert result.state == "succeeded", [ln.text for ln in logs.read("pk1")]
    assert result.images == {"user": image_name("shop", "user", SHA_B), "order": image_name("shop", "order", SHA_B)}
    assert (release_path(releases, result.images["order"]) / "venv" / "bin" / "python").exists()
