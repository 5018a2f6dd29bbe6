"""GitHub Actions workflows: CI (lint, test, build) on every push, and one CD workflow per environment that
builds and pushes the images and commits the rendered manifests to the GitOps repository."""

from __future__ import annotations

import shlex
from typing import Any

from juanie.spec import ProjectSpec

from .flux import gitops_url

_CHECKOUT = {"uses": "actions/checkout@v4"}
_PYTHON = {"uses": "actions/setup-python@v5", "with": {"python-version": "3.11"}}
_INSTALL = {"name": "Install", "run": "python -m pip install -r requirements.txt"}


def _commands(stage_run: list[str]) -> str:
    return "\n".join(stage_run)


def ci_workflow(spec: ProjectSpec) -> dict[str, Any]:
    jobs: dict[str, Any] = {}
    for stage, fallback in (("quality", "python -m compileall -q ."), ("test", "python -m pytest -q")):
        run = _commands(getattr(spec.pipeline, stage).run) or fallback
        jobs["lint" if stage == "quality" else "test"] = {
            "runs-on": "ubuntu-latest",
            "steps": [_CHECKOUT, _PYTHON, _INSTALL, {"name": stage.capitalize(), "run": run}],
        }
    build_steps: list[dict[str, Any]] = [_CHECKOUT]
    for name, service in spec.services.items():
        build = service.build
        command = (
            shlex.join(build.command)
            if build.command
            else (f"docker build -f {build.dockerfile} -t {name}:ci {build.context}")
        )
        build_steps.append({"name": f"Build {name}", "run": command})
    jobs["build"] = {"runs-on": "ubuntu-latest", "needs": ["lint", "test"], "steps": build_steps}
    return {
        "name": "ci",
        "on": {"push": {"branches": ["**"]}, "pull_request": {}},
        "permissions": {"contents": "read"},
        "jobs": jobs,
    }


def cd_workflow(spec: ProjectSpec, env_name: str) -> dict[str, Any]:
    env = spec.environments[env_name]
    steps: list[dict[str, Any]] = [
        _CHECKOUT,
        {"name": "Version", "run": 'echo "VERSION=${GITHUB_SHA::7}" >> "$GITHUB_ENV"'},
    ]
    for name, service in spec.services.items():
        repo = spec.image_repository(name)
        build = service.build
        steps.append(
            {
                "name": f"Build and push {name}",
                "run": f"docker build -f {build.dockerfile} -t {repo}:${{VERSION}} {build.context}\n"
                f"docker push {repo}:${{VERSION}}",
            }
        )
    steps.append(
        {
            "name": "Update the GitOps repository",
            "env": {"GITOPS_URL": gitops_url(spec), "GITOPS_TOKEN": "${{ secrets.GITOPS_TOKEN }}"},
            "run": "\n".join(
                [
                    "pip install juanie",
                    'git clone "$GITOPS_URL" gitops',
                    f"juanie render --env {env_name} --out gitops --version ${{VERSION}}",
                    "cd gitops",
                    'git config user.name "juanie-cd"',
                    'git config user.email "juanie-cd@users.noreply.github.com"',
                    "git add -A",
                    f'git commit -m "deploy {spec.name} ${{VERSION}} to {env_name}"',
                    "git push",
                ]
            ),
        }
    )
    branches = [b for b in env.branches] or [spec.project.gitops.branch]
    job: dict[str, Any] = {"runs-on": "ubuntu-latest", "steps": steps}
    if env.approval == "required":
        job["environment"] = env_name
    return {
        "name": f"cd-{env_name}",
        "on": {"push": {"branches": branches}, "workflow_dispatch": {}},
        "permissions": {"contents": "read", "packages": "write"},
        "concurrency": {"group": f"cd-{env_name}", "cancel-in-progress": False},
        "jobs": {"deploy": job},
    }
