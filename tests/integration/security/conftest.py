"""Servers for the security sweeps: a real `juanie up` process per module, stopped with its whole process group."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.server_support import Server, start_server


def stop_server(server: Server) -> None:
    """Stop the server, then make sure nothing it started (pipeline steps, git) outlives the test."""
    server.stop()
    try:
        os.killpg(server.proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(name: str = "data", env: dict[str, str] | None = None) -> Server:
        server = start_server(tmp_path_factory.mktemp("security") / name, env)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_server(server)


def metric_counts(text: str, name: str = "juanie_http_requests_total") -> dict[str, float]:
    """Sum a labelled counter from Prometheus text by its `code` label."""
    by_code: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        labels, _, value = line.rpartition(" ")
        code = labels.split('code="', 1)[1].split('"', 1)[0]
        by_code[code] = by_code.get(code, 0.0) + float(value)
    return by_code


def data_files(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path
