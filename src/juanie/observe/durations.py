"""Durations written the Prometheus way (``90s``, ``5m``, ``1h30m``) parsed into seconds.

Rules, routes, silences and queries all take durations in this one format so that what a team already writes in
Prometheus and Alertmanager configuration carries over unchanged.
"""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y))+")


class DurationError(ValueError):
    """A duration string that is not in the ``1h30m`` form."""


def parse_duration(text: str | int | float) -> float:
    """Return seconds for ``text``; numbers are taken as seconds already."""
    if isinstance(text, bool):
        raise DurationError(f"expected a duration like '30s' or '5m', got {text!r}")
    if isinstance(text, int | float):
        if text < 0:
            raise DurationError(f"expected a non-negative duration, got {text!r}")
        return float(text)
    if not isinstance(text, str):
        raise DurationError(f"expected a duration like '30s' or '5m', got {type(text).__name__}")
    stripped = text.strip()
    if not _WHOLE.fullmatch(stripped):
        raise DurationError(f"expected a duration like '30s', '5m' or '1h30m', got {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in _PART.findall(stripped))


def format_duration(seconds: float) -> str:
    """Shortest ``1h30m``-style text for ``seconds`` (whole milliseconds)."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if ms >= size:
            out.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(out)
