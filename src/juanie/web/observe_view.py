"""What the Observe pages show, as pure functions: time ranges, the chart queries, query answers shaped into chart
series, alerts joined with the silences that mute them, and the matchers a silence starts from.

No I/O here: the page modules run the queries and read the store; these functions decide what to ask and how the
answers read, so they are tested without a server.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from babel.dates import format_timedelta

from juanie.observe.matchers import Matcher, MatcherError, parse_matcher
from juanie.web.svg import Point, Series, format_number

REQUESTS = "juanie_gateway_requests_total"
DURATION = "juanie_gateway_request_duration_seconds_bucket"
CPU = "juanie_process_cpu_ratio"
MEMORY = "juanie_process_memory_bytes"
UP = "juanie_process_up"

# The range picker's choices: how far back a chart looks. Keys are what the URL carries (?range=6h).
RANGES: dict[str, float] = {"15m": 900.0, "1h": 3600.0, "6h": 6 * 3600.0, "24h": 24 * 3600.0}
DEFAULT_RANGE = "1h"
POINTS = 120  # samples per line: enough to see a shape, few enough to draw and send quickly
MIN_STEP = 5.0
MIN_WINDOW = 60.0
MAX_SERIES = 6  # one colour each (series-0 … series-5); more lines than that is noise on a small chart
SEVERITIES = ("P0", "P1", "P2", "P3")
ALERT_STATES = ("active", "firing", "pending", "silenced", "resolved")
SILENCE_KEYS = ("alertname", "env", "service", "instance", "version")


class RangeError(ValueError):
    """A ``range`` the picker does not offer."""


@dataclass(frozen=True)
class TimeRange:
    key: str
    seconds: float
    step: float  # seconds between points
    window: float  # the rate() window: several steps, never less than a minute

    @property
    def window_text(self) -> str:
        return f"{int(self.window)}s"


def parse_range(value: str | None) -> TimeRange:
    """``15m`` / ``1h`` / ``6h`` / ``24h`` (empty: the default) into the step and rate window its charts use."""
    key = (value or "").strip() or DEFAULT_RANGE
    if key not in RANGES:
        raise RangeError(f"range: expected one of {', '.join(RANGES)}, got {key[:16]!r}")
    seconds = RANGES[key]
    step = max(MIN_STEP, math.ceil(seconds / POINTS))
    return TimeRange(key, seconds, float(step), float(max(MIN_WINDOW, 4 * step)))


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def selector(labels: Mapping[str, str], extra: str = "") -> str:
    """``{env="shop-dev",service="cart"}``: label values quoted and escaped, empty ones left out."""
    parts = [f"{name}={_quote(value)}" for name, value in labels.items() if value]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}"


@dataclass(frozen=True)
class ChartQuery:
    """One chart: its key, the queries behind it, and how its values read (``unit``)."""

    key: str
    unit: str  # rate | percent | ms | cores | bytes
    queries: tuple[tuple[str, str], ...]  # (legend, expr); legend "" = one line per value of `by`
    by: str = "service"
    ratio: bool = False  # queries are (errors, total) of one ratio, per `by`


def chart_queries(namespace: str, service: str, window: TimeRange | float) -> list[ChartQuery]:
    """The charts of one environment (``env`` is its namespace, as the gateway labels it), optionally one service."""
    w = f"{int(window.window if isinstance(window, TimeRange) else window)}s"
    sel = selector({"env": namespace, "service": service})
    errors = selector({"env": namespace, "service": service}, 'code=~"5.."')
    by = "service"
    total = f"sum by ({by}) (rate({REQUESTS}{sel}[{w}]))"
    failed = f"sum by ({by}) (rate({REQUESTS}{errors}[{w}]))"
    latency = tuple(
        (name, f"histogram_quantile({q}, sum by (le) (rate({DURATION}{sel}[{w}])))")
        for name, q in (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99"))
    )
    return [
        ChartQuery("rate", "rate", (("", total),)),
        ChartQuery("errors", "percent", (("", failed), ("", total)), ratio=True),
        ChartQuery("latency", "ms", latency),
        ChartQuery("cpu", "cores", (("", f"sum by ({by}) ({CPU}{sel})"),)),
        ChartQuery("memory", "bytes", (("", f"sum by ({by}) ({MEMORY}{sel})"),)),
    ]


def services_query(namespace: str) -> str:
    """The services an environment has measurements of (its processes), for the service picker."""
    return f"count by (service) ({UP}{selector({'env': namespace})})"


# -- shaping answers into chart series -----------------------------------------------------------------------
def _value(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def matrix_series(result: Mapping[str, Any]) -> list[tuple[dict[str, str], list[tuple[float, float | None]]]]:
    """A Prometheus ``matrix`` answer (``{"resultType", "result"}``) as ``(labels, [(ts, value)])``; NaN is a gap."""
    if not result or result.get("resultType") != "matrix":
        return []
    out = []
    for item in result.get("result") or []:
        points = [(float(t), _value(v)) for t, v in item.get("values") or []]
        out.append((dict(item.get("metric") or {}), points))
    return out


def with_gaps(points: Sequence[tuple[float, float | None]], step: float) -> list[Point]:
    """Insert a gap where samples are missing for more than 1.5 steps, so a line never bridges an outage."""
    out: list[Point] = []
    previous: float | None = None
    for x, y in points:
        if previous is not None and x - previous > 1.5 * step:
            out.append(((previous + x) / 2, None))
        out.append((x, y))
        previous = x
    return out


def _name(labels: Mapping[str, str], by: str, fallback: str) -> str:
    return labels.get(by) or fallback


def _top(series: list[Series], limit: int) -> list[Series]:
    """The `limit` busiest lines (by their largest value), listed by name so colours stay put between refreshes."""

    def peak(s: Series) -> float:
        return max((y for _, y in s.points if y is not None), default=-math.inf)

    kept = sorted(series, key=peak, reverse=True)[:limit]
    return sorted(kept, key=lambda s: s.name)


def shape(
    results: Sequence[Mapping[str, Any]],
    legends: Sequence[str],
    step: float,
    scale: float = 1.0,
    by: str = "service",
    fallback: str = "all",
) -> list[Series]:
    """Chart lines from query answers: one line per legend when it is given, else one per value of label `by`."""
    lines: list[Series] = []
    for result, legend in zip(results, legends, strict=True):
        for labels, points in matrix_series(result):
            scaled = [(x, None if y is None else y * scale) for x, y in points]
            lines.append(Series(legend or _name(labels, by, fallback), with_gaps(scaled, step)))
    return _top(lines, MAX_SERIES)


def ratio(
    numerator: Mapping[str, Any],
    denominator: Mapping[str, Any],
    step: float,
    scale: float = 100.0,
    by: str = "service",
    fallback: str = "all",
) -> list[Series]:
    """errors / total per value of `by`: a time with traffic and no error series reads 0, not "no data"."""
    errors = {_name(labels, by, fallback): dict(points) for labels, points in matrix_series(numerator)}
    lines = []
    for labels, points in matrix_series(denominator):
        name = _name(labels, by, fallback)
        failed = errors.get(name, {})
        values: list[tuple[float, float | None]] = []
        for x, total in points:
            if total is None or total <= 0:
                values.append((x, None))
                continue
            values.append((x, scale * (failed.get(x) or 0.0) / total))
        lines.append(Series(name, with_gaps(values, step)))
    return _top(lines, MAX_SERIES)


def latest(series: Sequence[Series]) -> float | None:
    """The newest value across lines (for a chart's headline number); None when nothing was measured."""
    best: tuple[float, float] | None = None
    for s in series:
        for x, y in s.points:
            if y is not None and (best is None or x > best[0]):
                best = (x, y)
    return None if best is None else best[1]


# -- how values read on the axes -------------------------------------------------------------------------------
def format_bytes(value: float) -> str:
    """Binary units, as memory is usually read, short enough for an axis: 512B, 12KiB, 1.5MiB, 57MiB, 2GiB."""
    magnitude = abs(value)
    for limit, suffix in ((1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB")):
        if magnitude >= limit:
            scaled = value / limit
            return f"{scaled:.0f}{suffix}" if abs(scaled) >= 10 else f"{scaled:.2g}{suffix}"
    return f"{value:.0f}B"


def format_ms(value: float) -> str:
    return f"{value / 1000:.3g}s" if abs(value) >= 1000 else f"{format_number(value)}ms"


def format_percent(value: float) -> str:
    return f"{format_number(value)}%"


def format_rate(value: float) -> str:
    return f"{format_number(value)}/s"


FORMATS: dict[str, Callable[[float], str]] = {
    "rate": format_rate,
    "percent": format_percent,
    "ms": format_ms,
    "cores": format_number,
    "bytes": format_bytes,
}
SCALES: dict[str, float] = {"ms": 1000.0}
# The least height of each unit's y axis: an idle service's zero line reads 0…1 %, 0…0.1 cores, not −1…1.
Y_TOPS: dict[str, float] = {"rate": 1.0, "percent": 1.0, "ms": 10.0, "cores": 0.1, "bytes": 1024.0**2}


# -- alerts and silences -----------------------------------------------------------------------------------------
def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time from the records (naive ones are UTC), or None when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ActiveSilence:
    id: str
    matchers: tuple[Matcher, ...]


def active_silences(items: Iterable[Mapping[str, Any]]) -> list[ActiveSilence]:
    """The silences in force now (status ``active``), with their matchers parsed; unreadable ones are skipped."""
    out = []
    for item in items:
        if item.get("status") != "active":
            continue
        try:
            out.append(ActiveSilence(str(item["id"]), tuple(parse_matcher(m) for m in item.get("matchers") or [])))
        except MatcherError:
            continue
    return out


def silenced_by(labels: Mapping[str, str], silences: Sequence[ActiveSilence]) -> list[str]:
    """The ids of the active silences whose every matcher matches the alert's labels."""
    return [s.id for s in silences if s.matchers and all(m.matches(labels) for m in s.matchers)]


@dataclass(frozen=True)
class AlertRow:
    alert: Mapping[str, Any]
    silenced_by: list[str] = field(default_factory=list)

    @property
    def shown_state(self) -> str:
        state = str(self.alert.get("state") or "")
        return "silenced" if self.silenced_by and state in ("firing", "pending") else state

    @property
    def since(self) -> datetime | None:
        """Since when the alert is in its state: resolved at, fired at, or first active at."""
        state = self.alert.get("state")
        keys = {"resolved": "resolved_at", "firing": "fired_at"}.get(str(state), "active_at")
        return parse_time(self.alert.get(keys)) or parse_time(self.alert.get("active_at"))

    @property
    def matchers(self) -> str:
        labels = {str(k): str(v) for k, v in (self.alert.get("labels") or {}).items()}
        return silence_matchers_for(labels)


def alert_rows(
    episodes: Iterable[Mapping[str, Any]], silences: Sequence[ActiveSilence], state: str = "active"
) -> list[AlertRow]:
    """Alerts with the silences that mute them, filtered by the page's state tab.

    ``active`` is everything pending or firing (silenced ones included, marked); ``firing`` and ``pending`` leave
    the silenced out, as Alertmanager's UI does; ``silenced`` is only those; ``resolved`` is history.
    """
    rows = []
    for episode in episodes:
        labels = {str(k): str(v) for k, v in (episode.get("labels") or {}).items()}
        row = AlertRow(episode, silenced_by(labels, silences) if episode.get("state") != "resolved" else [])
        shown = row.shown_state
        if state == "active" and shown not in ("firing", "pending", "silenced"):
            continue
        if state in ("firing", "pending", "silenced", "resolved") and shown != state:
            continue
        rows.append(row)
    order = {"firing": 0, "pending": 1, "silenced": 2, "resolved": 3}
    return sorted(rows, key=lambda r: (order.get(r.shown_state, 4), str(r.alert.get("severity") or "P9")))


def silence_matchers_for(labels: Mapping[str, str]) -> str:
    """The matchers a silence made from an alert starts with: what names the alert, not its volatile values."""
    parts = [f"{key}={_quote(str(labels[key]))}" for key in SILENCE_KEYS if labels.get(key)]
    return ",".join(parts)


def relative(when: datetime | None, now: datetime, locale: str) -> str:
    """ "in 2 hours" or "3 minutes ago": silences end in the future, which the timeline's "… ago" cannot say."""
    if when is None:
        return ""
    return format_timedelta(when - now, add_direction=True, locale=locale, threshold=1.0)


def split_silences(items: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Silences by status (active, pending, expired), each list in the order given, with times as datetimes."""
    groups: dict[str, list[dict[str, Any]]] = {"active": [], "pending": [], "expired": []}
    for item in items:
        row = {**item, **{f"{k}_time": parse_time(item.get(k)) for k in ("starts_at", "ends_at", "created_at")}}
        groups.setdefault(str(item.get("status") or "expired"), []).append(row)
    return groups


# -- logs --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogRow:
    iso: str
    clock: str  # HH:MM:SS in UTC, like every other time on the pages' axes
    level: str
    service: str
    text: str


def log_rows(records: Iterable[Any]) -> list[LogRow]:
    """Log records (``ts``, ``level``, ``service``, ``msg``, ``raw``) as the page lists them; levels outside the
    known five read as ``info`` so a stray value never becomes a CSS class."""
    rows = []
    for r in records:
        when = datetime.fromtimestamp(float(r.ts), UTC)
        level = r.level if r.level in ("debug", "info", "warning", "error", "critical") else "info"
        rows.append(LogRow(when.isoformat(), when.strftime("%H:%M:%S"), level, str(r.service), str(r.msg or r.raw)))
    return rows
