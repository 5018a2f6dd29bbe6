"""Constrained value types of `juanie.yaml` (names, durations, quantities, commands).

Each type validates with a message that says what was expected, because these messages are shown to people as
`file:line:col: path: message`. Values are normalised to one canonical spelling so that rendering is
deterministic.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_CPU = re.compile(r"^(\d+(\.\d+)?)(m?)$")
_MEMORY = re.compile(r"^(\d+)(Ki|Mi|Gi|Ti|K|M|G|T)?$")
_PERCENT = re.compile(r"^(\d{1,3})%$")
_CRON_FIELD = re.compile(r"^[0-9*/,\-A-Za-z?]+$")

_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_MEMORY_BYTES = {
    None: 1,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}


def describe(value: Any) -> str:
    """Show a user's value in an error: strings quoted, containers by kind, never their full content."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return json.dumps(shown, ensure_ascii=False)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, int | float):
        return repr(value)
    return f"a {type(value).__name__}"


def _fail(kind: str, expected: str, value: Any) -> PydanticCustomError:
    return PydanticCustomError(
        kind, "expected {expected}, got {got}", {"expected": expected, "got": describe(value)}
    )


def _need_str(value: Any, expected: str) -> str:
    if not isinstance(value, str):
        raise _fail("string_type", expected, value)
    return value


def _dns_label(value: Any) -> str:
    expected = 'a lowercase name of letters, digits and "-" starting with a letter (at most 63 characters)'
    text = _need_str(value, expected)
    if not _DNS_LABEL.match(text):
        raise _fail("dns_label", expected, value)
    return text


def _env_var(value: Any) -> str:
    expected = "an environment variable name (letters, digits and _, not starting with a digit)"
    text = _need_str(value, expected)
    if not _ENV_VAR.match(text):
        raise _fail("env_var", expected, value)
    return text


def _identifier(value: Any) -> str:
    expected = "a name of letters, digits and _ starting with a letter (e.g. HighErrorRate)"
    text = _need_str(value, expected)
    if not _IDENT.match(text):
        raise _fail("identifier", expected, value)
    return text


def duration_seconds(text: str) -> float:
    """Seconds in a canonical duration such as `30s`, `5m` or `250ms`."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _duration(value: Any) -> str:
    expected = "a duration such as 250ms, 30s, 5m, 1h or 7d"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return f"{value}s"
    text = _need_str(value, expected)
    if not _DURATION.match(text):
        raise _fail("duration", expected, value)
    return text


def cpu_millicores(text: str) -> int:
    """Millicores in a canonical CPU quantity (`250m` -> 250, `2` -> 2000)."""
    match = _CPU.match(text)
    if match is None:
        raise ValueError(f"not a CPU quantity: {text!r}")
    number = float(match.group(1))
    return round(number if match.group(3) else number * 1000)


def memory_bytes(text: str) -> int:
    """Bytes in a canonical memory quantity (`128Mi` -> 134217728)."""
    match = _MEMORY.match(text)
    if match is None:
        raise ValueError(f"not a memory quantity: {text!r}")
    return int(match.group(1)) * _MEMORY_BYTES[match.group(2)]


def _cpu(value: Any) -> str:
    expected = 'a CPU quantity such as 250m, 0.5 or 2 (cores; "m" means thousandths)'
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return f"{round(value * 1000)}m"
    text = _need_str(value, expected)
    if not _CPU.match(text) or cpu_millicores(text) <= 0:
        raise _fail("cpu", expected, value)
    return f"{cpu_millicores(text)}m"


def _memory(value: Any) -> str:
    expected = "a memory quantity such as 128Mi, 1Gi or 512M"
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    text = _need_str(value, expected)
    if not _MEMORY.match(text) or memory_bytes(text) <= 0:
        raise _fail("memory", expected, value)
    return text


def _int_or_percent(value: Any) -> int | str:
    expected = 'a number of pods (e.g. 1) or a percentage (e.g. "25%")'
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    text = _need_str(value, expected)
    match = _PERCENT.match(text)
    if match is None or int(match.group(1)) > 100:
        raise _fail("int_or_percent", expected, value)
    return text


def _command(value: Any) -> list[str]:
    """A command is a shell-like string or a list of arguments; it is kept as an argument list (no shell)."""
    expected = 'a command line (e.g. "python -m app") or a list of arguments'
    if isinstance(value, str):
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise PydanticCustomError(
                "command", "cannot split the command line: {reason}", {"reason": str(exc)}
            ) from None
        if not words:
            raise _fail("command", expected, value)
        return words
    if isinstance(value, list) and value and all(isinstance(w, str | int | float) for w in value):
        return [str(w) for w in value]
    raise _fail("command", expected, value)


def _shell_line(value: Any) -> str:
    expected = 'a shell command line (e.g. "python -m pytest -q") or a list of arguments'
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(w, str | int | float) for w in value):
        return shlex.join(str(w) for w in value)
    raise _fail("command", expected, value)


def _http_path(value: Any) -> str:
    expected = 'an HTTP path starting with "/" (e.g. /health)'
    text = _need_str(value, expected)
    if not text.startswith("/") or any(c.isspace() for c in text):
        raise _fail("http_path", expected, value)
    return text


def _scalar_text(value: Any) -> Any:
    """Environment values are strings; numbers and booleans written bare in YAML are accepted and quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _cron(value: Any) -> str:
    expected = 'a cron schedule of five fields (e.g. "0 3 * * *")'
    text = _need_str(value, expected)
    fields = text.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise _fail("cron", expected, value)
    return " ".join(fields)


def _string_list(value: Any) -> Any:
    """Accept a single string where a list of strings is expected (e.g. `branches: main`)."""
    return [value] if isinstance(value, str) else value


DnsLabel = Annotated[str, BeforeValidator(_dns_label)]
EnvVarName = Annotated[str, BeforeValidator(_env_var)]
Identifier = Annotated[str, BeforeValidator(_identifier)]
Duration = Annotated[
    str,
    BeforeValidator(_duration),
    WithJsonSchema({"type": ["string", "integer"], "pattern": _DURATION.pattern, "examples": ["30s", "5m"]}),
]
Cpu = Annotated[
    str, BeforeValidator(_cpu), WithJsonSchema({"type": ["string", "number"], "examples": ["250m"]})
]
Memory = Annotated[
    str, BeforeValidator(_memory), WithJsonSchema({"type": ["string", "integer"], "examples": ["128Mi"]})
]
IntOrPercent = Annotated[
    int | str,
    BeforeValidator(_int_or_percent),
    WithJsonSchema({"type": ["string", "integer"], "examples": ["25%", 1]}),
]
Command = Annotated[
    list[str],
    BeforeValidator(_command),
    WithJsonSchema({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]
ShellLine = Annotated[
    str,
    BeforeValidator(_shell_line),
    WithJsonSchema({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]
"""A pipeline command: one shell line, run by bash (variables, pipes and `&&` work); a list is joined safely."""
HttpPath = Annotated[str, BeforeValidator(_http_path), WithJsonSchema({"type": "string", "pattern": "^/"})]
EnvValue = Annotated[
    str, BeforeValidator(_scalar_text), WithJsonSchema({"type": ["string", "number", "boolean"]})
]
Cron = Annotated[str, BeforeValidator(_cron), WithJsonSchema({"type": "string", "examples": ["0 3 * * *"]})]
StringList = Annotated[
    list[str],
    BeforeValidator(_string_list),
    WithJsonSchema({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]
Percent = Annotated[float, Field(gt=0, lt=100)]
