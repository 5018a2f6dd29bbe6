"""`juanie validate | render | lint | schema`: the commands that work on a `juanie.yaml` without a server.

User errors print one line each to stderr and exit 1; nothing here lets a traceback reach the terminal.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from juanie.render import ReleaseRef, lint_tree, render_tree, score
from juanie.spec import ProjectSpec, SpecError, json_schema, load_spec

_MANAGED_DIRS = ("base", "overlays", "rendered", "flux", "monitoring")
_F = TypeVar("_F", bound=Callable[..., Any])


def _guarded(command: _F) -> _F:
    """A bug must still come out as one line and exit 1, never as a traceback."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            typer.echo(f"juanie: internal error ({type(exc).__name__}): {exc}", err=True)
            raise typer.Exit(1) from None

    return run  # type: ignore[return-value]


def _fail(lines: list[str] | str) -> None:
    for line in [lines] if isinstance(lines, str) else lines:
        typer.echo(line, err=True)
    raise typer.Exit(1)


def _load(path: Path) -> ProjectSpec:
    try:
        return load_spec(path)
    except SpecError as exc:
        _fail([str(p) for p in exc.problems])
        raise  # unreachable: _fail exits


def _envs(spec: ProjectSpec, env: list[str] | None) -> list[str] | None:
    if not env:
        return None
    unknown = [e for e in env if e not in spec.environments]
    if unknown:
        _fail(f'unknown environment "{unknown[0]}"; expected one of {", ".join(spec.environments)}')
    return env


def _release(spec: ProjectSpec, version: str | None, images: list[str] | None) -> ReleaseRef | None:
    pairs: dict[str, str] = {}
    for item in images or []:
        service, sep, image = item.partition("=")
        if not sep or not image or service not in spec.services:
            _fail(f'--image "{item}": expected SERVICE=IMAGE with SERVICE one of {", ".join(spec.services)}')
        pairs[service] = image
    if version is None and not pairs:
        return None
    return ReleaseRef(version=version or "0.0.0-unreleased", images=pairs)


def _write_tree(out: Path, tree: dict[str, str], prune: bool) -> tuple[int, int]:
    """Write changed files only (unchanged files keep their mtime) and, when `prune`, remove stale ones in
    the directories Juanie owns. Returns (written, removed)."""
    written = removed = 0
    for rel, content in tree.items():
        target = out / rel
        if target.is_file() and target.read_text(encoding="utf-8") == content:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        written += 1
    if prune:
        for top in _MANAGED_DIRS:
            for path in sorted((out / top).rglob("*")) if (out / top).is_dir() else []:
                if path.is_file() and path.relative_to(out).as_posix() not in tree:
                    path.unlink()
                    removed += 1
    return written, removed


def validate(
    path: Path = typer.Argument(Path("juanie.yaml"), help="juanie.yaml or the directory holding it"),
) -> None:
    """Check a juanie.yaml and print every problem as file:line:col: path: message."""
    spec = _load(path)
    typer.echo(
        f"{path}: ok: project {spec.name}, {len(spec.services)} services, "
        f"environments {', '.join(spec.environments)}"
    )


def render(
    path: Path = typer.Argument(Path("juanie.yaml"), help="juanie.yaml or the directory holding it"),
    env: list[str] = typer.Option(None, "--env", "-e", help="render only these environments (repeatable)"),
    out: Path = typer.Option(Path("devops"), "--out", "-o", help="directory of the devops tree"),
    version: str = typer.Option(None, "--version", help="release version (short commit sha) for the images"),
    image: list[str] = typer.Option(None, "--image", help="SERVICE=IMAGE, overrides one service's image"),
) -> None:
    """Write the devops tree: Kustomize base/overlays, rendered manifests, Flux, workflows, monitoring."""
    spec = _load(path)
    envs = _envs(spec, env)
    tree = render_tree(spec, _release(spec, version, image), envs)
    try:
        written, removed = _write_tree(out, tree, prune=envs is None)
    except OSError as exc:
        _fail(f"{out}: cannot write the tree: {exc.strerror or exc}")
        return
    typer.echo(f"{out}: {len(tree)} files ({written} written, {removed} removed)")


def lint(
    path: Path = typer.Argument(Path("juanie.yaml"), help="juanie.yaml or the directory holding it"),
    env: list[str] = typer.Option(None, "--env", "-e", help="lint only these environments (repeatable)"),
) -> None:
    """Score the rendered manifests against the policy and list every failure with its file and object."""
    spec = _load(path)
    findings = lint_tree(render_tree(spec, None, _envs(spec, env)))
    failures = [f for f in findings if not f.ok]
    console = Console(stderr=False, highlight=False)
    if failures:
        table = Table(title="policy failures", show_lines=False)
        for column in ("file", "object", "check", "problem"):
            table.add_column(column)
        for f in failures:
            table.add_row(f.file, f.object, f.check, f.message)
        console.print(table)
    passed = len(findings) - len(failures)
    colour = "green" if not failures else "red"
    console.print(f"[{colour}]score {score(findings):.1f}%[/]: {passed} of {len(findings)} checks passed")
    if failures:
        raise typer.Exit(1)


def schema() -> None:
    """Print the JSON Schema of juanie.yaml (for editors and yaml-language-server)."""
    sys.stdout.write(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")


def register(app: typer.Typer) -> None:
    """Add validate, render, lint and schema to the main `juanie` application."""
    app.command("validate")(_guarded(validate))
    app.command("render")(_guarded(render))
    app.command("lint")(_guarded(lint))
    app.command("schema")(_guarded(schema))
