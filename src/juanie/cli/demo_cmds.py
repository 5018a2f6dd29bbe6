"""`juanie demo`: microshop on this machine, end to end — and a bad release for the loop to catch."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import typer

from juanie.cli.client import Client, CliError
from juanie.cli.common import command
from juanie.cli.delivery_cmds import watch
from juanie.cli.groups import app
from juanie.cli.output import console
from juanie.cli.pipeline_cmds import watch_run

demo_app = typer.Typer(help="The microshop demo: `juanie demo up`, `juanie demo bad-release`.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")

PROJECT = "microshop"
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "microshop"
DataDirOpt = typer.Option(Path(".juanie"), "--data-dir", envvar="JUANIE_DATA_DIR")
DemoDirOpt = typer.Option(
    Path(".juanie-demo"), "--demo-dir", envvar="JUANIE_DEMO_DIR",
    help="where microshop's source repository lives: outside the data directory, listed in the server's "
         "JUANIE_LOCAL_REPO_ROOTS (`make up` does both)",
)


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Microshop Dev", "GIT_AUTHOR_EMAIL": "dev@microshop.example",
           "GIT_COMMITTER_NAME": "Microshop Dev", "GIT_COMMITTER_EMAIL": "dev@microshop.example"}
    done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise CliError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def source_repo(demo_dir: Path) -> Path:
    """microshop's source repository under `demo_dir`, initialised from examples/microshop on first use.

    Never inside the data directory: the server refuses a repository there (see gitops.locations).
    """
    repo = demo_dir.resolve() / PROJECT
    if (repo / ".git").exists():
        return repo
    if not EXAMPLE.exists():
        raise CliError(f"{EXAMPLE} is missing; the demo needs the repository's examples/microshop")
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns(".venv", "__pycache__", "*.db", ".pytest_cache"))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "microshop: initial import")
    return repo


def _ensure_project(client: Client, repo: Path) -> None:
    names = {p["name"] for p in client.get("/api/projects")["items"]}
    if PROJECT not in names:
        try:
            client.post("/api/projects", {"name": PROJECT, "repo_url": str(repo), "team": "shop-platform",
                                          "description": "The example shop: user, product, order, payment."})
        except CliError as exc:
            if "JUANIE_LOCAL_REPO_ROOTS" not in str(exc):
                raise
            raise CliError(f"{exc} — start the server with JUANIE_LOCAL_REPO_ROOTS={repo.parent} "
                           "(`make up` does)") from None
        console.print(f"[green]✓[/green] project {PROJECT} registered (source: {repo})")
    secrets = {s["name"] for s in client.get(f"/api/projects/{PROJECT}/secrets")["items"]}
    if "PAYMENT_API_KEY" not in secrets:
        client.put(f"/api/projects/{PROJECT}/secrets/PAYMENT_API_KEY", {"value": "sk_demo_" + os.urandom(8).hex()})
    deadline = time.monotonic() + 60
    while client.get(f"/api/projects/{PROJECT}")["status"] != "active":
        if time.monotonic() > deadline:
            raise CliError(f"project {PROJECT} did not become active; see `juanie get events -p {PROJECT}`")
        time.sleep(0.5)


def _release_for(client: Client, sha: str) -> str | None:
    for release in client.get(f"/api/projects/{PROJECT}/releases", limit=50)["items"]:
        if release["commit"] == sha:
            return release["version"]
    return None


def _build(client: Client, repo: Path) -> str:
    """The release of the repository's head, running its pipeline if there is none yet."""
    sha = _git(repo, "rev-parse", "HEAD")
    version = _release_for(client, sha)
    if version:
        return version
    run = client.post(f"/api/projects/{PROJECT}/runs", {"ref": sha, "branch": "main"})
    console.print(f"pipeline run {run['id']} at {sha[:12]} (the first one builds the release virtualenv)")
    run = watch_run(client, run["id"])
    if run["status"] != "succeeded":
        raise CliError(f"the pipeline {run['status']}; see `juanie logs run {run['id']}`")
    version = _release_for(client, sha)
    if not version:
        raise CliError("the pipeline succeeded but recorded no release")
    return version


def _running(client: Client, env: str) -> str:
    items = client.get(f"/api/projects/{PROJECT}/deployments", env=env, status="success", limit=1)["items"]
    return items[0]["release"] if items else ""


def _deploy(client: Client, env: str, version: str, reason: str) -> dict[str, Any]:
    dep = client.post(f"/api/projects/{PROJECT}/deploy", {"env": env, "release": version, "reason": reason})
    if dep.get("approval") and dep["approval"]["status"] == "requested":
        client.post(f"/api/deployments/{dep['id']}/approve", {"reason": "demo"})
    return watch(client, dep["id"])


def _gateway_url(client: Client) -> str:
    port = os.environ.get("JUANIE_GATEWAY_PORT", "8480")
    return f"http://127.0.0.1:{port}"


@command(demo_app, "up")
def demo_up(data_dir: Path = DataDirOpt, demo_dir: Path = DemoDirOpt) -> None:
    """Register microshop, run its first pipeline and deploy dev (idempotent)."""
    client = Client.from_environment()
    repo = source_repo(demo_dir)
    _ensure_project(client, repo)
    version = _build(client, repo)
    if _running(client, "dev") != version:
        dep = _deploy(client, "dev", version, "demo: first deploy")
        if dep["status"] != "success":
            raise CliError(f"deploying dev ended {dep['status']}: {dep['message']}")
    gateway = _gateway_url(client)
    console.print(f"\n[bold green]dev is live[/bold green]: microshop {version} at {gateway}/microshop-dev/order/")
    console.print(f"  web UI:      {client.url}/  (sign in with the token in {data_dir.resolve() / 'admin-token'})")
    console.print(f"  source repo: {repo}  (commit there; `juanie run pipeline -p {PROJECT}` builds it)")
    console.print("  next:\n"
                  f"    juanie get envs -p {PROJECT}\n"
                  f"    juanie deploy -p {PROJECT} -e staging --wait\n"
                  f"    juanie promote -p {PROJECT} --from staging --to prod\n"
                  "    juanie demo bad-release          # a real bug, caught by the canary and rolled back\n"
                  f"    juanie logs -p {PROJECT} -e dev -f\n"
                  "    make down                        # stops Juanie and everything it started")


@command(demo_app, "bad-release")
def bad_release(demo_dir: Path = DemoDirOpt,
                failure_rate: float = typer.Option(0.2, help="share of payment requests the bug fails"),
                rps: float = typer.Option(40.0, help="load sent through the gateway during the rollout")) -> None:
    """Commit a real bug to microshop (payment fails ~20%), build it, and canary it on staging under load."""
    client = Client.from_environment()
    repo = source_repo(demo_dir)
    _ensure_project(client, repo)
    good = _build(client, repo)
    if _running(client, "staging") == "":
        console.print("staging runs nothing yet: deploying the current release there first")
        _deploy(client, "staging", good, "demo: baseline for the canary")
    payment = repo / "microshop" / "payment.py"
    text = payment.read_text()
    if "\nFAILURE_RATE = 0.0\n" in text:
        payment.write_text(text.replace("\nFAILURE_RATE = 0.0\n", f"\nFAILURE_RATE = {failure_rate}\n"))
        _git(repo, "commit", "-qam", "payment: switch to the new provider client")
        console.print(f"committed a bug to {payment.relative_to(repo)} (FAILURE_RATE = {failure_rate})")
    bad = _build(client, repo)
    stop = threading.Event()
    url = f"{_gateway_url(client)}/microshop-staging/payment/"
    load = threading.Thread(target=_load, args=(url, rps, stop), daemon=True)
    load.start()
    try:
        dep = _deploy(client, "staging", bad, "demo: the bad release")
    finally:
        stop.set()
        load.join(10)
    console.print(f"deployment {dep['id']} ended [bold]{dep['status']}[/bold]: {dep['message']}")
    payment.write_text(payment.read_text().replace(f"\nFAILURE_RATE = {failure_rate}\n", "\nFAILURE_RATE = 0.0\n"))
    _git(repo, "commit", "-qam", "payment: back to the old provider client")
    console.print(f"reverted the bug in the source too; see `juanie gitops log -p {PROJECT} -e staging`")


def _load(url: str, rps: float, stop: threading.Event) -> None:
    deadline = time.monotonic() + 600
    with httpx.Client(timeout=5) as client:
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                client.get(url)
            except httpx.HTTPError:
                pass
            time.sleep(1 / rps)


def register(root: typer.Typer) -> None:
    """Commands attach to their groups at import."""
