"""Loading `juanie.yaml`: text -> located data -> validated ProjectSpec, or every problem found at once."""

from __future__ import annotations

from pathlib import Path as FsPath

from pydantic import ValidationError

from .errors import SpecError, SpecProblem, format_path, translate
from .project import ProjectSpec
from .references import check_references
from .yamlpos import YamlProblem, locate


def parse_spec(text: str, filename: str = "juanie.yaml") -> ProjectSpec:
    """Validate a spec from its text. Pure: no I/O. Raises SpecError listing every problem and its place."""
    try:
        located = locate(text)
    except YamlProblem as exc:
        path = format_path(exc.path) if exc.path else "yaml"
        raise SpecError(
            [SpecProblem(filename, exc.position.line, exc.position.col, path, exc.message)]
        ) from None
    if located.data is None:
        raise SpecError(
            [
                SpecProblem(
                    filename, 1, 1, "yaml", "the file is empty; expected a mapping with project and services"
                )
            ]
        )
    if not isinstance(located.data, dict):
        pos = located.value_at(())
        kind = "a list" if isinstance(located.data, list) else "a single value"
        raise SpecError(
            [
                SpecProblem(
                    filename, pos.line, pos.col, "yaml", f"expected a mapping at the top level, got {kind}"
                )
            ]
        )
    try:
        spec = ProjectSpec.model_validate(located.data)
    except ValidationError as exc:
        raise SpecError(translate(ProjectSpec, exc.errors(), located, filename)) from None
    findings = check_references(spec)
    if findings:
        problems = []
        for path, message in findings:
            pos = located.value_at(path)
            problems.append(SpecProblem(filename, pos.line, pos.col, format_path(path), message))
        raise SpecError(problems)
    return spec


def load_spec(path: str | FsPath) -> ProjectSpec:
    """Read and validate a spec file (a directory means its `juanie.yaml`); unreadable -> SpecError."""
    target = FsPath(path)
    if target.is_dir():
        target = target / "juanie.yaml"
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([SpecProblem(str(target), 1, 1, "", "file not found")]) from None
    except UnicodeDecodeError as exc:
        raise SpecError(
            [SpecProblem(str(target), 1, 1, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
        ) from None
    except OSError as exc:
        raise SpecError(
            [SpecProblem(str(target), 1, 1, "", f"cannot read the file: {exc.strerror}")]
        ) from None
    return parse_spec(text, str(target))
