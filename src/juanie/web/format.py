"""How values read on a page: relative times, status colours, short summaries. Pure functions, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from babel.dates import format_datetime, format_timedelta

# Every lifecycle state Juanie knows, mapped to one of five tones the stylesheet colours.
TONES: dict[str, str] = {
    "active": "ok",
    "success": "ok",
    "succeeded": "ok",
    "approved": "ok",
    "healthy": "ok",
    "resolved": "ok",
    "creating": "busy",
    "updating": "busy",
    "initializing": "busy",
    "running": "busy",
    "pending": "busy",
    "queued": "busy",
    "requested": "warn",
    "suspended": "warn",
    "deleting": "warn",
    "acknowledged": "warn",
    "firing": "bad",
    "failed": "bad",
    "rolled_back": "bad",
    "rejected": "bad",
    "overridden": "bad",  # an approval set aside by an owner: never shown as a normal approval
    "triggered": "bad",
    "archived": "muted",
    "deleted": "muted",
    "cancelled": "muted",
    "expired": "muted",
    "revoked": "muted",
    # Engine health and sync (Argo CD's words) and step states.
    "progressing": "busy",
    "degraded": "bad",
    "missing": "warn",
    "synced": "ok",
    "outofsync": "warn",
    "skipped": "muted",
    "unknown": "muted",
    # Rollout phases and judge outcomes.
    "starting": "busy",
    "analysing": "busy",
    "promoting": "busy",
    "paused": "warn",
    "rolling_back": "bad",
    "done": "muted",
    "pass": "ok",
    "fail": "bad",
    "inconclusive": "warn",
}


def tone(status: str | None) -> str:
    """The colour family of a status: ok, busy, warn, bad or muted (unknown states muted, never hidden)."""
    return TONES.get((status or "").lower(), "muted")


def relative_time(when: datetime | None, now: datetime, locale: str) -> str:
    """ "3 minutes ago" / "3分钟前": how long ago something happened, in the reader's language."""
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    # A timestamp slightly ahead of this server's clock (another server's skew) still reads as the past.
    delta = min(when - now, timedelta(seconds=-1))
    return format_timedelta(delta, add_direction=True, locale=locale, threshold=1.0)


def absolute_time(when: datetime | None, locale: str) -> str:
    """The full timestamp, shown as a tooltip beside relative times (UTC, so every reader sees the same)."""
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return format_datetime(when.astimezone(UTC), "medium", locale=locale) + " UTC"


def short_sha(sha: str | None) -> str:
    return (sha or "")[:8]


def summarize_event_data(data: dict[str, object] | None, limit: int = 140) -> str:
    """A one-line `key=value` digest of an event's data for the timeline; long values are cut, not dropped."""
    if not data:
        return ""
    parts: list[str] = []
    for key in sorted(data):
        value = data[key]
        if value is None or value == "" or value == [] or value == {}:
            continue
        if isinstance(value, list):
            text = ",".join(str(v) for v in value)
        elif isinstance(value, dict):
            text = "{" + ",".join(f"{k}" for k in sorted(value)) + "}"
        else:
            text = str(value)
        parts.append(f"{key}={text}")
    line = " ".join(parts)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def duration(seconds: float | None) -> str:
    """A compact, language-neutral duration for step boxes and run headers: 0.4s, 12s, 3m 05s, 1h 02m."""
    if seconds is None or seconds != seconds or seconds < 0:
        return ""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
