"""From `juanie.yaml` to the stages a run executes — pure.

Build once, test what ships: the build stage makes the release directory (the checkout plus a virtualenv from its
requirements) with Juanie's packager, and the test and quality stages run inside that virtualenv, so the bits that
passed the tests are the bits that get deployed. The package stage records the artifacts (and runs a team's own
image build/push commands, for the Kubernetes engine).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from juanie.pipeline.model import PipelineSpec, Stage, Step
from juanie.spec import ProjectSpec, duration_seconds

PACKAGER = "juanie.pipeline.package"


def release_venv_bin(releases_dir: Path, project: str, service: str, sha: str) -> Path:
    return releases_dir / project / service / sha[:12] / "venv" / "bin"


def pipeline_for(spec: ProjectSpec, *, project: str, sha: str, releases_dir: Path, python: str,
                 requirements: str = "requirements.txt") -> PipelineSpec:
    services = sorted(spec.services)
    custom_builds = [spec.services[s].build.command for s in services if spec.services[s].build.command]
    packager = " ".join([
        shlex.quote(python), "-m", PACKAGER, "--project", shlex.quote(project), "--sha", shlex.quote(sha),
        "--releases-dir", shlex.quote(str(releases_dir)),
        *(shlex.quote(f"{s}={requirements}") for s in services),
    ])
    venv_bin = release_venv_bin(releases_dir, project, services[0], sha) if services else None
    in_venv = {"PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin", "VIRTUAL_ENV": str(venv_bin.parent)} \
        if venv_bin else {}
    pipeline = spec.pipeline

    def stage(name: str, builtin: list[str], user: list[str], timeout: str, env: dict[str, str],
              needs: tuple[str, ...] | None) -> Stage | None:
        commands = tuple(builtin + [_command(c) for c in user])
        if not commands:
            return None
        step = Step(name=name, commands=commands, timeout=duration_seconds(timeout), env=env)
        return Stage(name=name, steps=(step,), needs=needs)

    build_env = dict(pipeline.build.env)
    stages = [
        stage("build", [packager], [*custom_builds, *pipeline.build.run], pipeline.build.timeout, build_env, ()),
        stage("test", [], list(pipeline.test.run), pipeline.test.timeout,
              {**in_venv, **pipeline.test.env}, ("build",)),
        stage("quality", [], list(pipeline.quality.run), pipeline.quality.timeout,
              {**in_venv, **pipeline.quality.env}, ("build",)),
        stage("package", [], list(pipeline.package.run), pipeline.package.timeout,
              {**in_venv, **pipeline.package.env}, None),
    ]
    present = [s for s in stages if s is not None]
    names = {s.name for s in present}
    fixed = []
    for s in present:
        if s.name == "package":
            needs = tuple(n for n in ("test", "quality") if n in names) or ("build",)
            fixed.append(Stage(name=s.name, steps=s.steps, needs=needs))
        else:
            fixed.append(Stage(name=s.name, steps=s.steps, needs=tuple(n for n in (s.needs or ()) if n in names)))
    if "package" not in names:
        after = tuple(n for n in ("test", "quality") if n in names) or ("build",)
        done = Step(name="package", commands=("echo artifacts recorded by the build stage",), timeout=60)
        fixed.append(Stage(name="package", steps=(done,), needs=after))
    return PipelineSpec(stages=tuple(fixed))


def _command(command: object) -> str:
    if isinstance(command, list | tuple):
        return " ".join(shlex.quote(str(part)) for part in command)
    return str(command)
