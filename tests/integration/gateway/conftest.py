"""Fixtures for gateway tests: a real gateway process and real backend processes, always cleaned up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.gateway.gateway_helpers import Backend, GatewayProc, start_backend


@pytest.fixture
def backends() -> Iterator[Callable[..., Backend]]:
    """Factory: start a backend process (`name`, `mode`); all are killed at the end of the test."""
    started: list[Backend] = []

    def start(name: str, mode: str = "normal") -> Backend:
        backend = start_backend(name, mode)
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.kill()


@pytest.fixture
def gateway(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[GatewayProc]:
    """A running gateway process with an empty route table in a fresh state directory.

    Parametrize it indirectly with "httptools" to run the gateway without its C fast path.
    """
    gw = GatewayProc(tmp_path / "gateway-state", fast_path=getattr(request, "param", "fast path") != "httptools")
    gw.start()
    yield gw
    gw.stop()
