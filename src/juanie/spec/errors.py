"""Problems in a `juanie.yaml`, one line each (`file:line:col: path: message`), translated from Pydantic.

Pydantic's messages are written for programmers ("Input should be a valid integer"); these say what the file
should contain, using the schema itself (bounds, allowed values, known keys) so the hint is always current.
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from .fields import describe
from .yamlpos import Located, Path


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong with a spec file, where it is, and what was expected."""

    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return _one_line(text)


def _one_line(text: str) -> str:
    """Whatever a file contains, a problem stays on one line (control characters are escaped)."""
    return "".join(
        json.dumps(c)[1:-1] if (c.isspace() and c != " ") or not c.isprintable() else c for c in text
    )


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_./*-]+$")


def _key_text(key: str) -> str:
    return key if _PLAIN_KEY.match(key) else json.dumps(key, ensure_ascii=False)


class SpecError(Exception):
    """A spec that cannot be loaded; `str()` gives one line per problem, sorted by position."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.line, p.col, p.path, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


def format_path(path: Path) -> str:
    """`("alerts", 2, "expr")` -> `alerts[2].expr`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            part = _key_text(str(part))
            text += f".{part}" if text else part
    return text


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _model_field(model: type[BaseModel], key: Any) -> FieldInfo | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    return None


def _resolve(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[Any, FieldInfo | None]:
    """The (unwrapped) type expected at `loc` and the FieldInfo of its last model field, if any."""
    current: Any = root
    info: FieldInfo | None = None
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = _model_field(current, part)
            if info is None:
                return None, None
            current = info.annotation
        elif get_origin(current) is dict:
            current, info = get_args(current)[1], None
        elif get_origin(current) is list and isinstance(part, int):
            current, info = get_args(current)[0], None
        else:
            return None, None
    return _unwrap(current), info


def _allowed_keys(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    model, _ = _resolve(root, loc)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [info.alias or name for name, info in model.model_fields.items()]
    return []


def _bounds(info: FieldInfo | None) -> str:
    low = high = None
    for meta in info.metadata if info else []:
        if isinstance(meta, annotated_types.Ge):
            low = f">= {meta.ge}"
        elif isinstance(meta, annotated_types.Gt):
            low = f"> {meta.gt}"
        elif isinstance(meta, annotated_types.Le):
            high = f"<= {meta.le}"
        elif isinstance(meta, annotated_types.Lt):
            high = f"< {meta.lt}"
    return " and ".join(b for b in (low, high) if b)


def _number(kind: str, info: FieldInfo | None, ctx: dict[str, Any]) -> str:
    bounds = _bounds(info)
    if not bounds:
        for key, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if key in ctx:
                bounds = f"{sign} {ctx[key]}"
    return f"{kind} {bounds}" if bounds else kind


_PLAIN = {
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}


def _message(root: type[BaseModel], error: ErrorDetails, loc: tuple[Any, ...]) -> str:
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    got = describe(error.get("input"))
    annotation, info = _resolve(root, loc)
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        key = json.dumps(str(loc[-1]), ensure_ascii=False)[1:-1]
        allowed = _allowed_keys(root, loc[:-1])
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        if close:
            return f'unknown key "{key}"; did you mean "{close[0]}"?'
        return f'unknown key "{key}"; expected one of: {", ".join(allowed)}'
    if kind in ("int_parsing", "int_type", "int_from_float", "float_parsing", "float_type") or kind in (
        "greater_than_equal",
        "greater_than",
        "less_than_equal",
        "less_than",
    ):
        noun = "a number" if annotation is float or kind.startswith("float") else "an integer"
        return f"expected {_number(noun, info, ctx)}, got {got}"
    if kind == "literal_error":
        if get_origin(annotation) is Literal:
            choices = ", ".join(f'"{a}"' if isinstance(a, str) else str(a) for a in get_args(annotation))
        else:
            choices = str(ctx.get("expected", ""))
        return f"expected one of {choices}, got {got}"
    if kind in _PLAIN:
        return f"expected {_PLAIN[kind]}, got {got}"
    if kind in ("too_short", "too_long"):
        limit = ctx.get("min_length" if kind == "too_short" else "max_length")
        word = "at least" if kind == "too_short" else "at most"
        unit = "entry" if isinstance(error.get("input"), dict) else "item"
        return f"expected {word} {limit} {unit}{'' if limit == 1 else 's'}, got {ctx.get('actual_length')}"
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message[:1].lower() + message[1:]


def translate(
    root: type[BaseModel], errors: list[ErrorDetails], located: Located, filename: str
) -> list[SpecProblem]:
    """Turn Pydantic's validation errors into located, readable problems (one per error)."""
    problems: list[SpecProblem] = []
    for error in errors:
        loc = tuple(error["loc"])
        on_key = bool(loc) and isinstance(loc[-1], str) and loc[-1].endswith("[key]")
        if on_key:
            loc = loc[:-1]
        path: Path = tuple(loc)
        if error["type"] == "missing":
            pos = located.value_at(path[:-1])
        elif error["type"] == "extra_forbidden" or on_key:
            pos = located.key_at(path)
        else:
            pos = located.value_at(path)
        message = _message(root, error, loc)
        if "secrets" in loc and error.get("input") is not None:
            message = message.replace(describe(error.get("input")), "a value (hidden: it may be a secret)")
        if on_key:
            message = f"invalid name: {message}"
        problems.append(SpecProblem(filename, pos.line, pos.col, format_path(path), message))
    return problems
