"""Deploy, promote, roll back, approve — and watch a rollout live."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from juanie.cli.client import Client, CliError
from juanie.cli.common import OutputOpt, ProjectOpt, command
from juanie.cli.groups import app, get_app
from juanie.cli.output import Format, console, emit, styled_state

FINAL = {"success", "rolled_back", "cancelled"}
ReasonOpt = typer.Option("", "--reason", "-m", help="why (kept in the event log and the GitOps commit)")


def _summary(dep: dict[str, Any]) -> str:
    return (f"deployment [bold]{dep['id']}[/bold]: {dep['project']}/{dep['environment']} ← {dep['release']} "
            f"({dep['strategy']}) {styled_state(dep['status'])}")


def _weights_bar(weights: dict[str, int] | None) -> Text:
    weights = weights or {"stable": 100, "canary": 0}
    canary = int(weights.get("canary", 0))
    width = 40
    filled = round(width * canary / 100)
    bar = Text("█" * (width - filled), style="green") + Text("█" * filled, style="yellow")
    return Text(f"stable {100 - canary:>3}% ") + bar + Text(f" {canary:>3}% canary")


def render_deployment(dep: dict[str, Any]) -> Group:
    head = Text.from_markup(_summary(dep) + (f" · phase {dep['phase']}" if dep.get("phase") else ""))
    parts: list[Any] = [head, _weights_bar(dep.get("weights"))]
    approval = dep.get("approval") or {}
    if approval.get("status") == "requested":
        parts.append(Text.from_markup(f"[yellow]waiting for approval ({approval['mode']})[/yellow] — "
                                      f"`juanie approve {dep['id']}`"))
    elif approval.get("status") == "overridden":
        parts.append(Text(f"approval OVERRIDDEN by {approval.get('decided_by')}: {approval.get('reason')}",
                          style="bold red"))
    signals = dep.get("signals") or {}
    if signals:
        table = Table(box=None, header_style="bold")
        for header in ("SERVICE", "VERSION", "REQUESTS", "ERRORS", "ERROR %", "RPS", "P95"):
            table.add_column(header)
        for service, versions in sorted(signals.items()):
            for version, v in versions.items():
                ratio = (v["errors"] / v["requests"] * 100) if v["requests"] else 0.0
                p95 = f"{v['latency_p95'] * 1000:.0f} ms" if v.get("latency_p95") else "-"
                table.add_row(service, version, str(v["requests"]), str(v["errors"]), f"{ratio:.1f}", str(v["rate"]),
                              p95)
        parts.append(table)
    verdicts = dep.get("verdicts") or []
    if verdicts:
        lines = [f"{time.strftime('%H:%M:%S', time.localtime(v['at']))} {styled_state(v['outcome'])} "
                 f"{escape(v['sentence'])}" for v in verdicts[-6:]]
        parts.append(Panel("\n".join(lines), title="judge", title_align="left"))
    if dep.get("message"):
        parts.append(Text(dep["message"], style="dim"))
    return Group(*parts)


def watch(client: Client, dep_id: int) -> dict[str, Any]:
    dep = client.get(f"/api/deployments/{dep_id}")
    with Live(render_deployment(dep), console=console, refresh_per_second=4) as live:
        while dep["status"] not in FINAL:
            time.sleep(1)
            dep = client.get(f"/api/deployments/{dep_id}")
            live.update(render_deployment(dep))
    return dep


def _after(client: Client, dep: dict[str, Any], wait: bool, output: Format) -> None:
    if output is not Format.table:
        emit(watch(client, dep["id"]) if wait else dep, output, [])
        return
    console.print(_summary(dep))
    if wait:
        dep = watch(client, dep["id"])
        if dep["status"] != "success":
            raise typer.Exit(1)


WaitOpt = typer.Option(False, "--wait", "-w", help="watch the rollout live until it ends")


@command(app, "deploy")
def deploy(project: str = ProjectOpt, env: str = typer.Option(..., "--env", "-e"),
           release: str | None = typer.Option(None, "--release", "-r", help="default: the newest release"),
           reason: str = ReasonOpt, wait: bool = WaitOpt, output: Format = OutputOpt) -> None:
    """Deploy a release to an environment with that environment's strategy."""
    client = Client.from_environment()
    dep = client.post(f"/api/projects/{project}/deploy", {"env": env, "release": release, "reason": reason})
    _after(client, dep, wait, output)


@command(app, "promote")
def promote(project: str = ProjectOpt, from_: str = typer.Option(..., "--from"), to: str = typer.Option(..., "--to"),
            reason: str = ReasonOpt, yes: bool = typer.Option(False, "--yes", "-y", help="do not ask"),
            wait: bool = WaitOpt, output: Format = OutputOpt) -> None:
    """Deploy the exact release FROM runs to TO (never a rebuild); shows the manifest diff first."""
    client = Client.from_environment()
    preview = client.get(f"/api/projects/{project}/promote/preview", **{"from": from_, "to": to})
    if output is Format.table:
        from rich.syntax import Syntax

        console.print(f"promote {preview['release']} from {from_} to {to} (now {preview['current'] or 'nothing'})")
        console.print(Syntax(preview["diff"] or "(no manifest changes)", "diff", theme="ansi_dark"))
        if not yes and not typer.confirm("promote?", default=False):
            raise CliError("not promoted")
    dep = client.post(f"/api/projects/{project}/promote", {"from": from_, "to": to, "reason": reason})
    _after(client, dep, wait, output)


@command(app, "rollback")
def rollback(project: str = ProjectOpt, env: str = typer.Option(..., "--env", "-e"),
             to: str | None = typer.Option(None, "--to", help="release; default: the one before the current"),
             reason: str = ReasonOpt, wait: bool = WaitOpt, output: Format = OutputOpt) -> None:
    """Go back to an earlier release."""
    client = Client.from_environment()
    dep = client.post(f"/api/projects/{project}/rollback", {"env": env, "to": to, "reason": reason})
    _after(client, dep, wait, output)


@command(get_app, "deployments")
def get_deployments(project: str = ProjectOpt, env: str | None = typer.Option(None, "--env", "-e"),
                    limit: int = typer.Option(20, "--limit"), output: Format = OutputOpt) -> None:
    """Deployments of a project, newest first."""
    items = Client.from_environment().get(f"/api/projects/{project}/deployments", env=env, limit=limit)["items"]
    for item in items:
        item["approval_state"] = (item.get("approval") or {}).get("status", "-")
    emit(items, output, [("ID", "id"), ("ENV", "environment"), ("RELEASE", "release"), ("KIND", "kind"),
                         ("STRATEGY", "strategy"), ("STATUS", "status"), ("PHASE", "phase"),
                         ("APPROVAL", "approval_state"), ("CREATED", "created_at"), ("MESSAGE", "message")],
         empty=f"no deployments yet — try `juanie deploy -p {project} -e dev`")


@command(get_app, "deployment")
def get_deployment(dep_id: int = typer.Argument(...), watch_: bool = typer.Option(False, "--watch", "-w"),
                   output: Format = OutputOpt) -> None:
    """One deployment; -w watches weights, verdicts and golden signals live."""
    client = Client.from_environment()
    if watch_ and output is Format.table:
        watch(client, dep_id)
        return
    dep = client.get(f"/api/deployments/{dep_id}")
    if output is not Format.table:
        emit(dep, output, [])
    else:
        console.print(render_deployment(dep))


def _act(dep_id: int, action: str, reason: str) -> None:
    dep = Client.from_environment().post(f"/api/deployments/{dep_id}/{action}", {"reason": reason})
    console.print(f"[green]✓[/green] {action}: " + _summary(dep))


@command(app, "approve")
def approve(dep_id: int = typer.Argument(...), reason: str = ReasonOpt,
            override: bool = typer.Option(False, "--override",
                                          help="owners: let your own deployment through a required approval "
                                               "without a second person (needs --reason; audited, shown in red)")
            ) -> None:
    """Approve a deployment waiting at its environment's gate (a required one by someone other than its requester)."""
    if not override:
        _act(dep_id, "approve", reason)
        return
    if not reason.strip():
        raise CliError("an override needs a reason: `juanie approve ID --override --reason \"why\"`")
    dep = Client.from_environment().post(f"/api/deployments/{dep_id}/override", {"reason": reason})
    console.print(f"[bold red]! approval overridden[/bold red] by {escape(dep['approval']['decided_by'])}: "
                  f"{escape(reason)}\n" + _summary(dep))


@command(app, "reject")
def reject(dep_id: int = typer.Argument(...), reason: str = typer.Option(..., "--reason", "-m")) -> None:
    """Reject a deployment waiting at its environment's gate (a reason is required)."""
    _act(dep_id, "reject", reason)


@command(app, "pause")
def pause(kind: str = typer.Argument(..., help="deployment"), dep_id: int = typer.Argument(...),
          reason: str = ReasonOpt) -> None:
    """Hold a rollout at its current weights."""
    if kind != "deployment":
        raise CliError(f"cannot pause {kind!r}; try `juanie pause deployment ID`")
    _act(dep_id, "pause", reason)


@command(app, "abort")
def abort(kind: str = typer.Argument(..., help="deployment"), dep_id: int = typer.Argument(...),
          reason: str = ReasonOpt) -> None:
    """All traffic back to stable now, then roll back."""
    if kind != "deployment":
        raise CliError(f"cannot abort {kind!r}; try `juanie abort deployment ID`")
    _act(dep_id, "abort", reason)


@command(app, "retry")
def retry(kind: str = typer.Argument(..., help="deployment"), dep_id: int = typer.Argument(...),
          reason: str = ReasonOpt) -> None:
    """Deploy the same release again after a rollback or an abort."""
    if kind != "deployment":
        raise CliError(f"cannot retry {kind!r}; try `juanie retry deployment ID`")
    _act(dep_id, "retry", reason)


def register(root: typer.Typer) -> None:
    """Commands attach to their groups at import."""
