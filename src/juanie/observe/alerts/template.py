"""A tiny, safe template language for alert annotations: ``{{ $value }}``, ``{{ $labels.service }}``.

Prometheus annotations use Go templates; Juanie supports the part people actually write in them, with no code
execution: a variable, optionally piped through one known filter (``humanize``, ``humanizePercentage``,
``humanizeDuration``, ``printf "%.2f"``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_VARIABLE = re.compile(r"\$(value|labels\.([a-zA-Z_][a-zA-Z0-9_]*)|labels\[\"([^\"]*)\"\]|externalURL)\Z")
_PRINTF = re.compile(r'printf\s+"(%[-+ 0#]*\d*(?:\.\d+)?[dfgesx%])"\Z')
_FILTERS = ("humanize", "humanizePercentage", "humanizeDuration", "printf")


class TemplateError(ValueError):
    """A template action that is not one of the supported forms."""


def validate(template: str) -> None:
    """Raise ``TemplateError`` if ``template`` would fail to render for any values."""
    render(template, {}, 0.0)


def render(template: str, labels: Mapping[str, str], value: float, external_url: str = "") -> str:
    def action(match: re.Match[str]) -> str:
        return _action(match.group(1).strip(), labels, value, external_url, template)

    return _ACTION.sub(action, template)


def _action(body: str, labels: Mapping[str, str], value: float, external_url: str, template: str) -> str:
    parts = [p.strip() for p in body.split("|")]
    if not parts[0] or len(parts) > 2:
        raise TemplateError(f"template {template!r}: '{{{{ {body} }}}}' must be a variable and at most one filter")
    var = _VARIABLE.match(parts[0])
    if var is None:
        raise TemplateError(
            f"template {template!r}: unknown variable {parts[0]!r}; use $value, $labels.NAME or $externalURL"
        )
    if var.group(1) == "value":
        current: float | str = value
    elif var.group(1) == "externalURL":
        current = external_url
    else:
        current = labels.get(var.group(2) or var.group(3) or "", "")
    if len(parts) == 1:
        return _plain(current)
    return _filter(parts[1], current, template)


def _plain(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if math.isfinite(value) and value == int(value) else repr(value)


def _filter(spec: str, value: float | str, template: str) -> str:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if spec == "humanize":
        return humanize(number)
    if spec == "humanizePercentage":
        return f"{humanize(number * 100)}%"
    if spec == "humanizeDuration":
        return humanize_duration(number)
    printf = _PRINTF.match(spec)
    if printf:
        fmt = printf.group(1)
        if fmt.endswith("s"):
            return fmt % _plain(value)
        if fmt.endswith(("d", "x")):
            return fmt % int(number) if math.isfinite(number) else str(number)
        return fmt % number
    raise TemplateError(f"template {template!r}: unknown filter {spec!r}; supported: {', '.join(_FILTERS)}")


def humanize(value: float) -> str:
    """Like Prometheus's ``humanize``: SI prefixes, four significant digits."""
    if not math.isfinite(value) or value == 0:
        return _plain(value)
    magnitude = abs(value)
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= factor:
            return f"{value / factor:.4g}{prefix}"
    for factor, prefix in ((1e-3, "m"), (1e-6, "u"), (1e-9, "n")):
        if magnitude < 1 and magnitude >= factor:
            return f"{value / factor:.4g}{prefix}"
    return f"{value:.4g}"


def humanize_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return _plain(seconds)
    if abs(seconds) < 1:
        return f"{seconds * 1000:.4g}ms"
    whole = int(abs(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    parts.append(f"{secs}s")
    return ("-" if seconds < 0 else "") + " ".join(parts)
