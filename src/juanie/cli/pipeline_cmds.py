"""Pipelines, releases, logs and the GitOps history from the command line."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from juanie.cli.client import Client, CliError
from juanie.cli.common import OutputOpt, ProjectOpt, command
from juanie.cli.groups import get_app, gitops_app, logs_app, run_app
from juanie.cli.output import Format, console, emit, relative_time, styled_state

FINAL = {"succeeded", "failed", "cancelled"}


def _steps_table(run: dict[str, Any]) -> Table:
    title = (f"run {run['id']} · {run['project']} #{run['number']} · {run['branch']}@{run['commit'][:12]} · "
             f"{styled_state(run['status'])}")
    table = Table(title=title, box=None, header_style="bold", title_justify="left")
    for header in ("STAGE", "STEP", "STATE", "DURATION"):
        table.add_column(header)
    now = time.time()
    for step in run.get("steps", []):
        started, finished = step.get("started"), step.get("finished")
        duration = f"{(finished or now) - started:.1f}s" if started else "-"
        table.add_row(step["stage"], step["step"], styled_state(step["state"]), duration)
    if run.get("error"):
        table.caption = f"[red]{run['error']}[/red]"
    return table


def watch_run(client: Client, run_id: int, interval: float = 1.0) -> dict[str, Any]:
    """A live table of stages and steps until the run ends."""
    run = client.get(f"/api/runs/{run_id}")
    with Live(_steps_table(run), console=console, refresh_per_second=4, transient=False) as live:
        while run["status"] not in FINAL:
            time.sleep(interval)
            run = client.get(f"/api/runs/{run_id}")
            live.update(_steps_table(run))
    return run


@command(get_app, "runs")
def get_runs(project: str = ProjectOpt, limit: int = typer.Option(20, "--limit"), output: Format = OutputOpt) -> None:
    """Pipeline runs of a project, newest first."""
    items = Client.from_environment().get(f"/api/projects/{project}/runs", limit=limit)["items"]
    for item in items:
        item["commit_short"] = item["commit"][:12]
        item["took"] = f"{item['duration_seconds']:.0f}s" if item.get("duration_seconds") else "-"
    emit(items, output, [("ID", "id"), ("#", "number"), ("STATUS", "status"), ("BRANCH", "branch"),
                         ("COMMIT", "commit_short"), ("ENV", "target_env"), ("TRIGGER", "trigger"),
                         ("TOOK", "took"), ("CREATED", "created_at")],
         empty=f"no runs yet — try `juanie run pipeline -p {project}`")


@command(get_app, "releases")
def get_releases(project: str = ProjectOpt, limit: int = typer.Option(20, "--limit"),
                 output: Format = OutputOpt) -> None:
    """Releases of a project, newest first."""
    items = Client.from_environment().get(f"/api/projects/{project}/releases", limit=limit)["items"]
    for item in items:
        item["services"] = ", ".join(sorted(item["artifacts"]))
    emit(items, output, [("VERSION", "version"), ("BRANCH", "branch"), ("RUN", "run"), ("AUTHOR", "author"),
                         ("SERVICES", "services"), ("CREATED", "created_at"), ("MESSAGE", "message")],
         empty="no releases yet — a green pipeline makes one")


@command(run_app, "pipeline")
def run_pipeline(project: str = ProjectOpt, ref: str = typer.Option("", "--ref", help="branch, tag or commit"),
                 wait: bool = typer.Option(True, "--wait/--no-wait", help="follow the run live until it ends"),
                 output: Format = OutputOpt) -> None:
    """Run the pipeline at a ref (default: the project's default branch)."""
    client = Client.from_environment()
    run = client.post(f"/api/projects/{project}/runs", {"ref": ref} if ref else {})
    if output is not Format.table:
        if wait:
            run = _wait_quietly(client, run["id"])
        emit(run, output, [])
    else:
        console.print(f"queued run [bold]{run['id']}[/bold] ({project} #{run['number']}) at {run['commit'][:12]}")
        if wait:
            run = watch_run(client, run["id"])
    if wait and run["status"] != "succeeded":
        raise typer.Exit(1)


def _wait_quietly(client: Client, run_id: int) -> dict[str, Any]:
    while True:
        run = client.get(f"/api/runs/{run_id}")
        if run["status"] in FINAL:
            return run
        time.sleep(1)


@command(logs_app, "run")
def logs_run(run_id: int = typer.Argument(...), follow: bool = typer.Option(False, "--follow", "-f"),
             step: str | None = typer.Option(None, "--step", help="stage/step, e.g. test/test"),
             grep: str | None = typer.Option(None, "--grep", help="only lines containing this text")) -> None:
    """A run's logs; -f follows them live until the run ends."""
    client = Client.from_environment()
    if not follow:
        lines = client.get(f"/api/runs/{run_id}/logs", step=step, q=grep)["items"]
        for line in lines:
            _print_line(line)
        return
    try:
        with httpx.stream("GET", f"{client.url}/api/runs/{run_id}/logs", params={"follow": 1, "step": step} if step
                          else {"follow": 1}, headers=client._headers(), timeout=httpx.Timeout(10, read=None)) as r:
            if r.status_code >= 400:
                r.read()
                Client._decode(r)
            for raw in r.iter_lines():
                if raw.startswith("data: ") and raw != "data: {}":
                    line = json.loads(raw[6:])
                    if not grep or grep.lower() in line["text"].lower():
                        _print_line(line)
    except httpx.HTTPError as exc:
        raise CliError(f"log stream interrupted: {exc}") from None
    run = client.get(f"/api/runs/{run_id}")
    console.print(_steps_table(run))


def _print_line(line: dict[str, Any]) -> None:
    stamp = time.strftime("%H:%M:%S", time.localtime(line["ts"]))
    style = {"stderr": "yellow", "system": "dim"}.get(line["stream"], "")
    where = escape(f"[{line['step']}] ") if line["step"] else ""
    text = escape(line["text"])
    console.print(f"[dim]{stamp}[/dim] [cyan]{where}[/cyan]" + (f"[{style}]{text}[/{style}]" if style else text),
                  highlight=False, soft_wrap=True)


@command(gitops_app, "log")
def gitops_log(project: str = ProjectOpt, env: str | None = typer.Option(None, "--env", "-e"),
               limit: int = typer.Option(20, "--limit"), output: Format = OutputOpt) -> None:
    """History of the GitOps repository (optionally of one environment)."""
    items = Client.from_environment().get(f"/api/projects/{project}/gitops/log", env=env, limit=limit)["items"]
    for item in items:
        item["short"] = item["sha"][:10]
        item["when"] = relative_time(time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(item["timestamp"])))
    emit(items, output, [("COMMIT", "short"), ("WHEN", "when"), ("ENV", "environment"), ("RELEASE", "release"),
                         ("ACTOR", "actor"), ("SUBJECT", "subject")], empty="no commits yet")


@command(gitops_app, "diff")
def gitops_diff(project: str = ProjectOpt, a: str = typer.Argument(...), b: str = typer.Argument(...),
                path: str | None = typer.Option(None, "--path")) -> None:
    """Unified diff between two revisions of the GitOps repository."""
    diff = Client.from_environment().get(f"/api/projects/{project}/gitops/diff", a=a, b=b, path=path)["diff"]
    from rich.syntax import Syntax

    console.print(Syntax(diff or "(no changes)", "diff", theme="ansi_dark", word_wrap=True))


def register(app: typer.Typer) -> None:
    """Commands attach to their groups at import; nothing else to add to the root."""
