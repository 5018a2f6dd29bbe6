"""Tables for people, JSON or YAML for scripts (`-o json|yaml`), relative times and coloured states."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


class Format(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


STATE_STYLES = {
    "active": "green",
    "success": "green",
    "succeeded": "green",
    "approved": "green",
    "Healthy": "green",
    "ready": "green",
    "creating": "yellow",
    "updating": "yellow",
    "initializing": "yellow",
    "running": "cyan",
    "pending": "yellow",
    "queued": "yellow",
    "requested": "yellow",
    "Progressing": "cyan",
    "failed": "red",
    "rolled_back": "red",
    "rejected": "red",
    "overridden": "bold red",
    "Degraded": "red",
    "deleting": "magenta",
    "suspended": "magenta",
    "archived": "dim",
    "cancelled": "dim",
    "deleted": "dim",
    "expired": "dim",
}


def styled_state(value: str) -> str:
    style = STATE_STYLES.get(value)
    return f"[{style}]{value}[/{style}]" if style else value


def relative_time(iso: str | None, now: datetime | None = None) -> str:
    if not iso:
        return "-"
    try:
        then = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def emit(
    data: Any,
    fmt: Format,
    columns: Sequence[tuple[str, str]],
    *,
    title: str | None = None,
    empty: str = "nothing here yet",
    states: Sequence[str] = ("status",),
    times: Sequence[str] = ("created_at", "at", "updated_at"),
) -> None:
    """Print `data` (a list of dicts) as a table with `columns` (header, key), or as JSON/YAML."""
    if fmt is Format.json:
        print(json.dumps(data, indent=2, default=str))
        return
    if fmt is Format.yaml:
        print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), end="")
        return
    rows = data if isinstance(data, list) else [data]
    if not rows:
        console.print(f"[dim]{empty}[/dim]")
        return
    table = Table(title=title, header_style="bold", box=None, pad_edge=False)
    for index, (header, _) in enumerate(columns):
        last = index == len(columns) - 1
        table.add_column(
            header, no_wrap=not last, overflow="ellipsis" if last else "fold", max_width=60 if last else None
        )
    for row in rows:
        cells = []
        for _, key in columns:
            value = row.get(key) if isinstance(row, dict) else None
            if key in states and isinstance(value, str):
                cells.append(styled_state(value))
            elif key in times:
                cells.append(relative_time(value))
            elif isinstance(value, list):
                cells.append(", ".join(str(v) for v in value))
            elif isinstance(value, dict):
                cells.append(json.dumps(value, default=str)[:80])
            else:
                cells.append("-" if value is None else str(value))
        table.add_row(*cells)
    console.print(table)
