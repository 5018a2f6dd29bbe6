"""`juanie` — the command line. It talks to the API like kubectl and argocd do; errors are one line, exit 1."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Any

import httpx
import typer

from juanie.cli import server
from juanie.cli.client import Client, CliError, save_config
from juanie.cli.common import OutputOpt, ProjectOpt, command
from juanie.cli.groups import app, create_app, get_app, secret_app
from juanie.cli.output import Format, console, emit

command(app, "up")(server.up)
command(app, "down")(server.down)


@command(app, "login")
def login(
    url: str = typer.Option("http://127.0.0.1:8420", "--url", envvar="JUANIE_URL"),
    token: str | None = typer.Option(None, "--token", help="an API token (or use --username)"),
    username: str | None = typer.Option(None, "--username", "-u"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="read the password from standard input"
    ),
) -> None:
    """Store the server URL and a token in the config file (mode 0600)."""
    url = url.rstrip("/")
    if username:
        password = sys.stdin.readline().rstrip("\n") if password_stdin else getpass.getpass("password: ")
        try:
            response = httpx.post(
                url + "/api/auth/login",
                auth=(username, password),
                json={"token_name": f"cli@{username}"},
                timeout=30,
            )
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach Juanie at {url}: {exc}") from None
        token = Client._decode(response)["token"]
    if not token:
        raise CliError("give --token or --username")
    me = Client(url, token).get("/api/me")
    path = save_config(url, token)
    console.print(f"[green]✓[/green] logged in to {url} as [bold]{me['username']}[/bold] (config: {path})")


@command(get_app, "projects")
def get_projects(output: Format = OutputOpt) -> None:
    """Projects you can see."""
    items = Client.from_environment().get("/api/projects")["items"]
    for item in items:
        item["envs"] = " ".join(f"{e['name']}:{e['status']}" for e in item["environments"])
    emit(
        items,
        output,
        [
            ("NAME", "name"),
            ("STATUS", "status"),
            ("TEAM", "team"),
            ("ENVIRONMENTS", "envs"),
            ("CREATED", "created_at"),
        ],
        empty="no projects yet — try `juanie create project NAME`",
    )


@command(get_app, "envs")
def get_envs(project: str = ProjectOpt, output: Format = OutputOpt) -> None:
    """A project's environments."""
    items = Client.from_environment().get(f"/api/projects/{project}/environments")["items"]
    emit(
        items,
        output,
        [
            ("NAME", "name"),
            ("STATUS", "status"),
            ("NAMESPACE", "namespace"),
            ("REPLICAS", "replicas"),
            ("SIZE", "size"),
            ("APPROVAL", "approval"),
            ("STRATEGY", "strategy"),
            ("BRANCHES", "branches"),
        ],
    )


@command(get_app, "events")
def get_events(
    project: str | None = typer.Option(None, "--project", "-p"),
    kind: str | None = typer.Option(None, "--kind", help="exact kind or a prefix like 'project.*'"),
    limit: int = typer.Option(30, "--limit"),
    output: Format = OutputOpt,
) -> None:
    """Recent events, newest first."""
    items = Client.from_environment().get("/api/events", project=project, kind=kind, limit=limit)["items"]
    emit(
        items,
        output,
        [
            ("ID", "id"),
            ("WHEN", "at"),
            ("ACTOR", "actor"),
            ("KIND", "kind"),
            ("SUBJECT", "subject"),
            ("DATA", "data"),
        ],
        empty="no events",
    )


@command(get_app, "members")
def get_members(project: str = ProjectOpt, output: Format = OutputOpt) -> None:
    """Who has which role on a project."""
    items = Client.from_environment().get(f"/api/projects/{project}/members")["items"]
    emit(items, output, [("USER", "user"), ("TEAM", "team"), ("ROLE", "role")])


@command(get_app, "tokens")
def get_tokens(output: Format = OutputOpt) -> None:
    """Your API tokens (never their values)."""
    items = Client.from_environment().get("/api/tokens")["items"]
    emit(
        items,
        output,
        [
            ("ID", "id"),
            ("NAME", "name"),
            ("PREFIX", "prefix"),
            ("CREATED", "created_at"),
            ("REVOKED", "revoked"),
        ],
    )


@command(create_app, "project")
def create_project(
    name: str = typer.Argument(..., help="project name (lowercase, digits, '-')"),
    repo: str = typer.Option("", "--repo", help="source repository: a local path or a URL"),
    description: str = typer.Option("", "--description"),
    team: str = typer.Option("", "--team", help="owning team"),
    output: Format = OutputOpt,
) -> None:
    """Create a project with dev, staging and prod (and a push webhook when it has a repository)."""
    client = Client.from_environment()
    if repo and "://" not in repo and not repo.startswith("git@") and Path(repo).exists():
        repo = str(Path(repo).resolve())
    project = client.post("/api/projects", {"name": name, "repo_url": repo, "description": description,
                                            "team": team})
    webhook = client.post(f"/api/projects/{name}/webhook") if repo else None
    if output is not Format.table:
        emit(project | ({"webhook": webhook} if webhook else {}), output, [])
        return
    console.print(f"[green]✓[/green] project [bold]{name}[/bold] created")
    emit(project["environments"], output, [("ENV", "name"), ("STATUS", "status"), ("REPLICAS", "replicas"),
                                           ("SIZE", "size"), ("APPROVAL", "approval")])
    if webhook:
        console.print(f"push webhook: {webhook['url']}")
        console.print(f"  secret (shown once): [bold]{webhook['secret']}[/bold]")


@command(create_app, "token")
def create_token(name: str = typer.Argument(...), output: Format = OutputOpt) -> None:
    """Create an API token; its value is printed once."""
    token = Client.from_environment().post("/api/tokens", {"name": name})
    if output is not Format.table:
        emit(token, output, [])
        return
    console.print(f"token {token['name']} (id {token['id']}): [bold]{token['token']}[/bold]")
    console.print("[dim]store it now; it is not shown again[/dim]")


@command(create_app, "user")
def create_user(
    username: str = typer.Argument(...),
    admin: bool = typer.Option(False, "--admin"),
    password_stdin: bool = typer.Option(False, "--password-stdin"),
) -> None:
    """Create a user (administrators only)."""
    body: dict[str, Any] = {"username": username, "is_admin": admin}
    if password_stdin:
        body["password"] = sys.stdin.readline().rstrip("\n")
    Client.from_environment().post("/api/users", body)
    console.print(f"[green]✓[/green] user [bold]{username}[/bold] created")


def _transition(verb: str, name: str, reason: str) -> None:
    project = Client.from_environment().post(f"/api/projects/{name}/{verb}", {"reason": reason})
    console.print(f"[green]✓[/green] project [bold]{name}[/bold] is now {project['status']}")


@command(app, "archive")
def archive(
    kind: str = typer.Argument(..., help="project"),
    name: str = typer.Argument(...),
    reason: str = typer.Option("", "--reason"),
) -> None:
    """Archive a project (it becomes read-only)."""
    if kind != "project":
        raise CliError(f"cannot archive {kind!r}; try `juanie archive project NAME`")
    _transition("archive", name, reason)


@command(app, "suspend")
def suspend(
    kind: str = typer.Argument(..., help="project"),
    name: str = typer.Argument(...),
    reason: str = typer.Option("", "--reason"),
) -> None:
    """Suspend a project."""
    if kind != "project":
        raise CliError(f"cannot suspend {kind!r}; try `juanie suspend project NAME`")
    _transition("suspend", name, reason)


@command(app, "resume")
def resume(kind: str = typer.Argument(..., help="project or deployment"), name: str = typer.Argument(...),
           reason: str = typer.Option("", "--reason")) -> None:
    """Resume a suspended project, or a paused rollout (`juanie resume deployment ID`)."""
    if kind == "deployment":
        dep = Client.from_environment().post(f"/api/deployments/{name}/resume", {"reason": reason})
        console.print(f"[green]✓[/green] deployment {dep['id']} resumed")
        return
    if kind != "project":
        raise CliError(f"cannot resume {kind!r}; try `juanie resume project NAME` or `juanie resume deployment ID`")
    _transition("resume", name, reason)


@command(app, "grant")
def grant(
    project: str = ProjectOpt,
    role: str = typer.Option(..., "--role"),
    user: str | None = typer.Option(None, "--user"),
    team: str | None = typer.Option(None, "--team"),
) -> None:
    """Give a user or team a role on a project (viewer, developer, maintainer, owner)."""
    Client.from_environment().put(
        f"/api/projects/{project}/members", {"user": user, "team": team, "role": role}
    )
    console.print(f"[green]✓[/green] {user or team} is {role} on {project}")


@command(secret_app, "set")
def secret_set(
    name: str = typer.Argument(...),
    project: str = ProjectOpt,
    env: str | None = typer.Option(None, "--env", "-e", help="environment (default: project-wide)"),
    value_stdin: bool = typer.Option(True, "--stdin/--prompt", help="read the value from stdin"),
) -> None:
    """Set a secret; the value is read from stdin (or a hidden prompt), never from the command line."""
    value = (
        sys.stdin.read().rstrip("\n")
        if value_stdin and not sys.stdin.isatty()
        else getpass.getpass("value: ")
    )
    secret = Client.from_environment().put(
        f"/api/projects/{project}/secrets/{name}", {"value": value}, env=env
    )
    console.print(f"[green]✓[/green] secret {name} ({secret['scope']}) is at version {secret['version']}")


@command(secret_app, "list")
def secret_list(
    project: str = ProjectOpt, env: str | None = typer.Option(None, "--env", "-e"), output: Format = OutputOpt
) -> None:
    """Secret names, scopes and versions."""
    items = Client.from_environment().get(f"/api/projects/{project}/secrets", env=env)["items"]
    emit(
        items,
        output,
        [
            ("NAME", "name"),
            ("SCOPE", "scope"),
            ("VERSION", "version"),
            ("UPDATED BY", "updated_by"),
            ("UPDATED", "updated_at"),
        ],
        empty="no secrets",
    )


@command(secret_app, "delete")
def secret_delete(
    name: str = typer.Argument(...),
    project: str = ProjectOpt,
    env: str | None = typer.Option(None, "--env", "-e"),
) -> None:
    """Delete a secret."""
    Client.from_environment().delete(f"/api/projects/{project}/secrets/{name}", env=env)
    console.print(f"[green]✓[/green] secret {name} deleted")


def _register_optional() -> None:
    """Command groups of other layers register themselves here (`register(app)`) when present."""
    import importlib

    for module_name in ("juanie.cli.spec_cmds", "juanie.cli.pipeline_cmds", "juanie.cli.engine_cmds",
                        "juanie.cli.delivery_cmds", "juanie.cli.observe_cmds", "juanie.cli.demo_cmds"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module_name.startswith(exc.name):
                raise
            continue
        module.register(app)


_register_optional()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
