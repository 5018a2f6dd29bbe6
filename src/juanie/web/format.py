"""How values read on a page: relative times, status colours, short summaries. Pure functions, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from babel.dates import format_datetime, format_timedelta

# Every lifecycle state Juanie knows, mapped to one of five tones the stylesheet colours.
_TONES: dict[str, str] = {
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
    "triggered": "bad",
    "archived": "muted",
    "deleted": "muted",
    "cancelled": "muted",
    "expired": "muted",
    "revoked": "muted",
}


def tone(status: str | None) -> str:
    """The colour family of a status: ok, busy, warn, bad or muted (unknown states muted, never hidden)."""
    return _TONES.get((status or "").lower(), "muted")


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
