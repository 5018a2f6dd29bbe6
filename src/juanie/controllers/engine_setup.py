"""Starting the engine the server drives, and the secrets it hands to processes.

The local engine's gateway and application processes run in their own sessions and outlive the server; on start the
engine adopts them instead of restarting them.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import select

from juanie.engines.base import EnvRef
from juanie.sandbox import Sandbox
from juanie.settings import Settings
from juanie.store import secrets as secret_store
from juanie.store.crypto import SecretBox
from juanie.store.db import Database
from juanie.store.models import Environment, Project

BACKING_URLS = {"postgres": "DATABASE_URL", "redis": "REDIS_URL", "rabbitmq": "AMQP_URL"}


def secrets_hook(db: Database, box: SecretBox):  # type: ignore[no-untyped-def]
    """Secrets as the rendered manifests reference them, from the project's (and environment's) secrets:

    * any other Secret (`<service>-secrets` by default) / key `NAME` — every secret, by its name;
    * `<project>-postgres|redis|rabbitmq` / key `url` — the secrets DATABASE_URL, REDIS_URL and AMQP_URL.
    """

    def hook(env: EnvRef) -> dict[str, dict[str, str]]:
        with db.session() as s:
            project = s.scalar(select(Project).where(Project.name == env.project))
            if project is None:
                return {}
            environment = s.scalar(select(Environment).where(Environment.project_id == project.id,
                                                             Environment.name == env.env))
            values = secret_store.resolve(s, box, project, environment)
        out: dict[str, dict[str, str]] = {}
        for dep, name in BACKING_URLS.items():
            if name in values:
                out[f"{env.project}-{dep}"] = {"url": values[name]}
        out["*"] = dict(values)  # `<service>-secrets` and any other Secret a manifest names
        return out

    return hook


async def start_engine(settings: Settings, db: Database, box: SecretBox, sandbox: Sandbox | None = None) -> Any:
    """The local engine with its gateway (started if not running), or None when the server runs without one."""
    if settings.engine == "none":
        return None
    if settings.engine != "local":
        raise ValueError(f"JUANIE_ENGINE={settings.engine!r}: expected 'local' or 'none'")
    from juanie.engines.local import LocalEngine, ensure_gateway

    client = await asyncio.to_thread(ensure_gateway, settings.data_dir / "gateway",
                                     f"127.0.0.1:{settings.gateway_port}", f"127.0.0.1:{settings.gateway_admin_port}")
    os.environ["JUANIE_GATEWAY_URL"] = settings.gateway_url  # services reach each other through the gateway
    engine = LocalEngine(settings.data_dir / "engine", client, releases_dir=settings.data_dir / "releases",
                         secrets=secrets_hook(db, box),
                         sandbox=sandbox or Sandbox.from_env(hidden=(settings.data_dir,)))
    await engine.start()
    return engine


def stop_gateway(state_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the gateway of `state_dir` (SIGTERM, then SIGKILL); True if one was running."""
    try:
        pid = int((state_dir / "gateway.pid").read_text().strip())
        proc = psutil.Process(pid)
        if "juanie.engines.local.gateway" not in " ".join(proc.cmdline()):
            return False  # the pid was reused by something else
    except (OSError, ValueError, psutil.Error):
        return False
    proc.terminate()
    try:
        proc.wait(timeout)
    except psutil.TimeoutExpired:
        proc.kill()
    return True
