"""Alerts, silences, channels and metric queries from the command line (like amtool and promtool query)."""

from __future__ import annotations

import math
import time
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from juanie.cli.client import Client, CliError
from juanie.cli.common import OutputOpt, ProjectOpt, command
from juanie.cli.groups import app as root_app
from juanie.cli.groups import get_app
from juanie.cli.output import Format, console, emit, relative_time
from juanie.observe.durations import DurationError, format_duration, parse_duration

silence_app = typer.Typer(help="Silence alerts: `juanie silence add alertname=X service=y --duration 2h`.",
                          no_args_is_help=True)  # fmt: skip
SEVERITY_STYLES = {"P0": "bold red", "P1": "red", "P2": "yellow", "P3": "cyan"}
STATE_STYLES = {"firing": "red", "pending": "yellow", "resolved": "green", "active": "red", "expired": "dim"}
_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 60) -> str:
    """A one-line chart: the values resampled to ``width`` columns (mean per column), NaN shown as a space."""
    finite = [v for v in values if math.isfinite(v)]
    if not values or not finite:
        return ""
    if len(values) > width:
        size = len(values) / width
        columns = []
        for i in range(width):
            chunk = [v for v in values[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)] if math.isfinite(v)]
            columns.append(sum(chunk) / len(chunk) if chunk else math.nan)
        values = columns
    low, high = min(finite), max(finite)
    span = high - low
    out = []
    for v in values:
        if not math.isfinite(v):
            out.append(" ")
        elif span == 0:
            out.append(_BLOCKS[len(_BLOCKS) // 2])
        else:
            out.append(_BLOCKS[min(int((v - low) / span * (len(_BLOCKS) - 1) + 0.5), len(_BLOCKS) - 1)])
    return "".join(out)


def _duration(text: str, option: str) -> float:
    try:
        seconds = parse_duration(text)
    except DurationError as exc:
        raise CliError(f"{option}: {exc}") from None
    if seconds <= 0:
        raise CliError(f"{option}: expected a positive duration like 15m or 2h")
    return seconds


def _labels_text(labels: dict[str, str], skip: tuple[str, ...] = ("alertname", "severity", "project")) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in skip)


@command(get_app, "alerts")
def get_alerts(
    project: str | None = typer.Option(None, "--project", "-p", help="project name (default: every one you see)"),
    state: str = typer.Option("firing,pending", "--state", help="pending, firing, resolved (comma-separated)"),
    env: str = typer.Option("", "--env", "-e"),
    service: str = typer.Option("", "--service", "-s"),
    severity: str = typer.Option("", "--severity"),
    limit: int = typer.Option(100, "--limit"),
    output: Format = OutputOpt,
) -> None:
    """Alerts, newest first (firing and pending unless --state says otherwise)."""
    params = {"project": project, "state": state, "env": env or None, "service": service or None,
              "severity": severity or None, "limit": limit}  # fmt: skip
    items = Client.from_environment().get("/api/alerts", **params)["items"]
    if output is not Format.table:
        emit(items, output, [])
        return
    if not items:
        console.print(f"[dim]no {state.replace(',', ' or ')} alerts[/dim]")
        return
    table = Table(header_style="bold", box=None, pad_edge=False)
    for header in ("SEVERITY", "ALERT", "STATE", "PROJECT", "LABELS", "SINCE", "SUMMARY"):
        table.add_column(header, overflow="fold" if header == "SUMMARY" else "ellipsis")
    for a in items:
        style = SEVERITY_STYLES.get(a["severity"], "")
        sev = f"[{style}]{a['severity']}[/{style}]" if style else a["severity"] or "-"
        st_style = STATE_STYLES.get(a["state"], "")
        since = relative_time(a["resolved_at"] if a["state"] == "resolved" else a["fired_at"] or a["active_at"])
        summary = escape(a["annotations"].get("summary", ""))
        state_text = f"[{st_style}]{a['state']}[/{st_style}]"
        table.add_row(sev, escape(a["alertname"]), state_text, a["project"], escape(_labels_text(a["labels"])), since,
                      summary)  # fmt: skip
    console.print(table)


@command(get_app, "silences")
def get_silences(
    project: str | None = typer.Option(None, "--project", "-p"),
    expired: bool = typer.Option(False, "--expired", help="include expired silences"),
    output: Format = OutputOpt,
) -> None:
    """Silences that are active or pending."""
    items = Client.from_environment().get("/api/silences", project=project, expired=expired or None)["items"]
    for s in items:
        s["matchers_text"] = " ".join(s["matchers"])
        s["ends"] = relative_time(s["ends_at"]).replace(" ago", "") if s["status"] != "expired" else "expired"
    emit(items, output, [("ID", "id"), ("PROJECT", "project"), ("MATCHERS", "matchers_text"), ("STATUS", "status"),
                         ("ENDS", "ends_at"), ("BY", "created_by"), ("COMMENT", "comment")],
         empty="no silences — `juanie silence add -p P alertname=X --duration 1h --comment why`",
         times=("ends_at",))  # fmt: skip


@command(get_app, "channels")
def get_channels(project: str = ProjectOpt, output: Format = OutputOpt) -> None:
    """Notification channels of a project (targets are shown redacted)."""
    items = Client.from_environment().get(f"/api/projects/{project}/channels")["items"]
    for c in items:
        c["target"] = c["config"].get("target", "")
    emit(items, output, [("NAME", "name"), ("KIND", "kind"), ("TARGET", "target"), ("RESOLVED", "send_resolved"),
                         ("UPDATED", "updated_at")], times=("updated_at",),
         empty="no channels — add one with PUT /api/projects/P/channels/NAME")  # fmt: skip


@command(silence_app, "add")
def silence_add(
    matchers: list[str] = typer.Argument(
        ..., help='label matchers: alertname=HighErrorRate service=payment env=~"dev|staging"'
    ),
    project: str = ProjectOpt,
    duration: str = typer.Option("1h", "--duration", "-d", help="how long, e.g. 30m, 2h, 1d"),
    comment: str = typer.Option(..., "--comment", "-c", help="why (shown to whoever is on call)"),
    output: Format = OutputOpt,
) -> None:
    """Silence alerts matching every matcher for a while."""
    _duration(duration, "--duration")
    created = Client.from_environment().post(
        "/api/silences", {"project": project, "matchers": matchers, "duration": duration, "comment": comment}
    )
    if output is not Format.table:
        emit(created, output, [])
        return
    console.print(f"[green]✓[/green] silence [bold]{created['id']}[/bold] on {escape(' '.join(created['matchers']))} "
                  f"until {created['ends_at']}", highlight=False)  # fmt: skip


@command(silence_app, "expire")
def silence_expire(silence_id: str = typer.Argument(...)) -> None:
    """End a silence now."""
    Client.from_environment().delete(f"/api/silences/{silence_id}")
    console.print(f"[green]✓[/green] silence {silence_id} expired")


@command(root_app, "query")
def query(
    expr: str = typer.Argument(..., help="PromQL, e.g. 'sum by (service) (rate(juanie_gateway_requests_total[5m]))'"),
    project: str | None = typer.Option(None, "--project", "-p"),
    range_: str | None = typer.Option(None, "--range", "-r", help="a range query over the last DURATION, e.g. 1h"),
    step: str | None = typer.Option(None, "--step", help="resolution of a range query (default: range/120)"),
    output: Format = OutputOpt,
) -> None:
    """Query metrics; with --range, one sparkline per series."""
    client = Client.from_environment()
    if range_ is None:
        data = client.get("/api/metrics/query", query=expr, project=project)["data"]
        if output is not Format.table:
            emit(data, output, [])
            return
        _print_instant(data)
        return
    seconds = _duration(range_, "--range")
    every = _duration(step, "--step") if step else max(seconds / 120, 1.0)
    end = time.time()
    data = client.get("/api/metrics/query_range", query=expr, project=project, start=end - seconds, end=end,
                      step=format_duration(every))["data"]  # fmt: skip
    if output is not Format.table:
        emit(data, output, [])
        return
    _print_range(data, end - seconds, end, every)


def _series_name(metric: dict[str, str]) -> str:
    name = metric.get("__name__", "")
    labels = ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{labels}}}" if labels or not name else name


def _print_instant(data: dict[str, Any]) -> None:
    if data["resultType"] == "scalar":
        console.print(data["result"][1])
        return
    if not data["result"]:
        console.print("[dim]no series matched[/dim]")
        return
    table = Table(header_style="bold", box=None, pad_edge=False)
    table.add_column("SERIES", overflow="fold")
    table.add_column("VALUE", justify="right")
    for item in data["result"]:
        table.add_row(escape(_series_name(item["metric"])), item["value"][1])
    console.print(table)


def _print_range(data: dict[str, Any], start: float, end: float, step: float) -> None:
    if not data["result"]:
        console.print("[dim]no series matched in that range[/dim]")
        return
    count = int((end - start) / step) + 1
    for item in data["result"]:
        slots = [math.nan] * count
        for t, v in item["values"]:
            index = round((float(t) - start) / step)
            if 0 <= index < count:
                slots[index] = float(v)
        finite = [v for v in slots if math.isfinite(v)]
        last = f"{finite[-1]:.4g}" if finite else "-"
        summary = f"min {min(finite):.4g}  max {max(finite):.4g}  last {last}" if finite else ""
        console.print(f"[bold]{escape(_series_name(item['metric']))}[/bold]")
        console.print(f"  [cyan]{sparkline(slots)}[/cyan]  [dim]{summary}[/dim]", highlight=False)


def register(app: typer.Typer) -> None:
    """`get alerts|silences|channels` and `query` attach at import; `silence` is a group of its own."""
    app.add_typer(silence_app, name="silence")
