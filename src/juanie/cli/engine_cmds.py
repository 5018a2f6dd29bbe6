"""What runs, from the command line: apply/delete manifests on the local engine, workloads, process logs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.markup import escape

from juanie.cli.client import Client, CliError
from juanie.cli.common import OutputOpt, command
from juanie.cli.groups import app, get_app, logs_app
from juanie.cli.output import Format, console, emit, styled_state


def _read(path: Path) -> str:
    if str(path) == "-":
        import sys

        return sys.stdin.read()
    try:
        return path.read_text()
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror}") from None


def _workloads(status: dict[str, Any], output: Format) -> None:
    if output is not Format.table:
        emit(status, output, [])
        return
    for w in status["workloads"]:
        w["ready_desired"] = f"{w['ready']}/{w['desired']}"
        w["versions_text"] = " ".join(f"{v}:{n}" for v, n in sorted(w.get("versions", {}).items())) or w["version"]
    emit(status["workloads"], output, [("NAME", "name"), ("READY", "ready_desired"), ("UPDATED", "updated"),
                                       ("VERSIONS", "versions_text"), ("RESTARTS", "restarts"),
                                       ("HEALTH", "health"), ("MESSAGE", "message")],
         states=("health",), empty="no workloads")
    console.print(f"health {styled_state(status['health'])} · sync {status['sync']}"
                  + (f" · revision {status['revision']}" if status.get("revision") else ""))
    for w in status["workloads"]:
        if w.get("limits") and w["limits"] != "no resource limits set":
            console.print(f"[dim]{escape(w['name'])}[/dim] {escape(w['limits'])}")
    for item in status.get("not_enforced", []):
        console.print(f"[yellow]not enforced locally:[/yellow] {item}")
    for item in status.get("drift", []):
        console.print(f"[magenta]drift:[/magenta] {item}")


@command(app, "apply")
def apply(file: Path = typer.Option(..., "--file", "-f", help="a YAML file of Kubernetes manifests, or -"),
          env: str = typer.Option(..., "--env", "-e", help="namespace to run them in"),
          output: Format = OutputOpt) -> None:
    """Run Kubernetes manifests on the local engine (Deployments become supervised processes)."""
    status = Client.from_environment().post("/api/engine/apply", {"namespace": env, "yaml": _read(file)})
    if output is Format.table:
        console.print(f"[green]✓[/green] applied {file} to {env}")
    _workloads(status, output)


@command(app, "delete")
def delete(file: Path | None = typer.Option(None, "--file", "-f", help="the file that was applied (optional)"),
           env: str = typer.Option(..., "--env", "-e")) -> None:
    """Stop what runs in a namespace of the local engine."""
    Client.from_environment().delete(f"/api/engine/namespaces/{env}")
    console.print(f"[green]✓[/green] stopped everything in {env}")


@command(get_app, "workloads")
def get_workloads(env: str = typer.Option(..., "--env", "-e", help="environment (with -p) or namespace"),
                  project: str | None = typer.Option(None, "--project", "-p"),
                  output: Format = OutputOpt) -> None:
    """Workloads the engine runs: replicas ready/desired, versions, restarts, health."""
    client = Client.from_environment()
    path = (f"/api/projects/{project}/environments/{env}/status" if project
            else f"/api/engine/namespaces/{env}")
    _workloads(client.get(path), output)


@logs_app.callback()
def logs(ctx: typer.Context,
         project: str | None = typer.Option(None, "--project", "-p"),
         env: str | None = typer.Option(None, "--env", "-e"),
         service: str = typer.Option("", "--service", "-s"),
         level: str = typer.Option("", "--level", help="minimum level: debug, info, warning, error"),
         grep: str = typer.Option("", "--grep", help="only lines containing this text"),
         limit: int = typer.Option(200, "--limit"),
         follow: bool = typer.Option(False, "--follow", "-f")) -> None:
    """Process logs of an environment (stdout/stderr of every replica, labelled)."""
    if ctx.invoked_subcommand is not None:
        return
    if not project or not env:
        raise typer.BadParameter("give --project and --env (or use `juanie logs run ID`)")
    client = Client.from_environment()
    path = f"/api/projects/{project}/environments/{env}/logs"
    params = {"service": service, "level": level, "q": grep, "limit": limit}
    try:
        if not follow:
            for rec in client.get(path, **params)["items"]:
                _print(rec)
            return
        with httpx.stream("GET", client.url + path, params={**params, "follow": 1}, headers=client._headers(),
                          timeout=httpx.Timeout(10, read=None)) as response:
            if response.status_code >= 400:
                response.read()
                Client._decode(response)
            for raw in response.iter_lines():
                if raw.startswith("data: "):
                    _print(json.loads(raw[6:]))
    except CliError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    except (httpx.HTTPError, KeyboardInterrupt):
        return


def _print(rec: dict[str, Any]) -> None:
    stamp = time.strftime("%H:%M:%S", time.localtime(rec.get("ts") or 0))
    level = (rec.get("level") or "").upper()
    color = {"ERROR": "red", "CRITICAL": "red", "WARNING": "yellow", "DEBUG": "dim"}.get(level, "")
    who = escape(f"{rec.get('service')}/{rec.get('instance', '')}")
    text = escape(rec.get("msg") or rec.get("raw") or "")
    lvl = f"[{color}]{level:<5}[/{color}]" if color else f"{level:<5}"
    console.print(f"[dim]{stamp}[/dim] [cyan]{who}[/cyan] {lvl} {text}", highlight=False, soft_wrap=True)


def register(root: typer.Typer) -> None:
    """Commands attach to their groups at import."""
