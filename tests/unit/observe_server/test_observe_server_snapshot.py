"""The metric store outlives a restart: the service snapshots it to the data directory and reloads it on start; a
damaged snapshot is set aside instead of stopping the server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from juanie.controllers.observe import ObserveConfig, ObserveService


@dataclass
class _Settings:
    data_dir: Path


@dataclass
class _State:
    settings: _Settings
    db: object = None
    box: object = None
    specs: object = None
    engine: object = None


def test_metrics_survive_a_restart_through_the_snapshot(tmp_path: Path) -> None:
    first = ObserveService(_State(_Settings(tmp_path)), ObserveConfig())
    for i in range(10):
        first.store.append("juanie_gateway_requests_total", {"service": "api", "code": "200"}, 10.0 * i, 1000.0 + i)
    first.save_snapshot()
    assert (tmp_path / "observe" / "metrics.npz").exists()
    second = ObserveService(_State(_Settings(tmp_path)), ObserveConfig())
    second.load_snapshot()
    result = second.engine_query.query("juanie_gateway_requests_total", 1009.0)
    assert result.samples() == [({"__name__": "juanie_gateway_requests_total", "service": "api", "code": "200"}, 90.0)]


def test_a_damaged_snapshot_is_set_aside_and_the_store_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "observe" / "metrics.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a snapshot")
    service = ObserveService(_State(_Settings(tmp_path)), ObserveConfig())
    service.load_snapshot()
    assert service.store.series_count() == 0
    assert not path.exists() and path.with_suffix(".damaged").read_bytes() == b"not a snapshot"
