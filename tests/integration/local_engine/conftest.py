"""Fixtures for the local engine: a real gateway process, a release directory with the test app, an engine.

Every process a test starts (gateway, replicas, their children, an engine host) is killed by process group in
the finalizers, whatever the test did.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from juanie.engines.base import EnvRef
from juanie.engines.local import LocalEngine
from juanie.engines.local.gateway_client import GatewayClient, ensure_gateway
from juanie.engines.local.supervisor import Timing
from tests.integration.local_engine.le_helpers import APP, free_port, kill_everything_under

FAST = Timing(backoff_base=0.4, backoff_max=5.0, backoff_reset=30.0, hpa_interval=0.5, drain_timeout=3.0)


@dataclass
class Gw:
    state_dir: Path
    listen: str
    admin: str
    client: GatewayClient


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """The test's directory; everything started with it in its command line dies at the end."""
    yield tmp_path
    kill_everything_under(tmp_path)


@pytest.fixture
def release(root: Path) -> Path:
    """A release directory (a `file://` image) holding the test app."""
    d = root / "release"
    d.mkdir()
    shutil.copy(APP, d / "app.py")
    return d


@pytest.fixture
def gw(root: Path) -> Iterator[Gw]:
    state = root / "gateway"
    listen, admin = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    client = ensure_gateway(state, listen, admin)
    yield Gw(state, listen, admin, client)
    pid_file = state / "gateway.pid"
    pids = [int(pid_file.read_text().split()[0])] if pid_file.exists() else []
    kill_everything_under(state, pids)


@pytest.fixture
async def make_engine(root: Path, gw: Gw) -> AsyncIterator[Callable[..., LocalEngine]]:
    """Factory for engines on the test's data dir; each is stopped (processes left running) at the end."""
    engines: list[LocalEngine] = []

    def make(secrets: Callable[[EnvRef], dict[str, dict[str, str]]] | None = None, **kw: object) -> LocalEngine:
        client = GatewayClient(gw.client.admin_url, (gw.state_dir / "admin-token").read_text().strip())
        e = LocalEngine(root / "data", client, root / "releases", secrets=secrets, timing=FAST, **kw)  # type: ignore[arg-type]
        engines.append(e)
        return e

    yield make
    for e in engines:
        await e.stop(keep_running=True)
