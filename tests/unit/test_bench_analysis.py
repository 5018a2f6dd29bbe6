"""The pure parts of the benches: the fleet's juanie.yaml, the memory fit, the soak's load split, the per-environment
durations and the summary's verdicts. A wrong one would publish a wrong figure, so they are tested like the core."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

from juanie.render import ReleaseRef, render_manifests
from juanie.spec import parse_spec

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_fleet_spec_is_a_valid_juanie_yaml_rendering_one_deployment_per_service() -> None:
    reconcile = _bench("reconcile")
    spec = parse_spec(reconcile.spec_text("fleet-0007", 10), "juanie.yaml")
    assert sorted(spec.services) == [f"svc-{i:02d}" for i in range(10)]
    manifests = render_manifests(spec, "prod", ReleaseRef("abc123abc123", {}))
    assert sum(1 for m in manifests if m["kind"] == "Deployment") == 10


def test_durations_group_by_environment_and_skip_unfinished() -> None:
    reconcile = _bench("reconcile")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [("dev", "success", t0, t0 + timedelta(seconds=s)) for s in (1, 2, 9)]
    rows += [("prod", "success", t0, t0 + timedelta(seconds=4)), ("prod", "running", t0, None)]
    out = reconcile.durations(rows)
    assert out["dev"] == {"n": 3, "median": 2.0, "p95": 9.0, "max": 9.0}
    assert out["prod"]["n"] == 1 and out["all"]["n"] == 4 and out["all"]["median"] == 3.0


def test_the_memory_fit_uses_the_second_half_only() -> None:
    soak = _bench("soak")
    warm_up = [(t * 5.0, 100.0 + t) for t in range(20)]  # +1 MiB per sample while warming up
    steady = [(100.0 + t * 5.0, 120.0 + 0.01 * t) for t in range(20)]  # 0.01 MiB per 5 s = 7.2 MiB/h
    result = soak.fit(warm_up + steady)
    assert result["points"] == 20
    assert result["slope_mib_per_hour"] == pytest.approx(7.2, abs=0.01)
    assert soak.fit(warm_up[:4])["slope_mib_per_hour"] is None


def test_the_soak_load_splits_its_rate_seventy_thirty() -> None:
    soak = _bench("soak")
    api = {name: f"/api/{name}" for name in ("projects", "project", "deployments", "runs", "events", "status")}
    loops = soak.plan(100.0, api, "/gw")
    assert sum(rps for _, _, rps in loops) == pytest.approx(100.0)
    assert [rps for name, _, rps in loops if name == "gateway"] == [pytest.approx(30.0)]


def test_the_summary_judges_each_new_figure_from_its_raw_value() -> None:
    summary = _bench("summary")
    docs = {"api_load.json": {"p99_ms": 300, "errors": 0}, "soak.json": {"slope_mib_per_hour": 3.5, "errors": 2}}
    table = {r["figure"]: r["status"] for r in summary.rows(docs)}
    assert table["API p99, 50 clients × 60 s"] == "not met"
    assert table["API errors, 50 clients × 60 s"] == "met"
    assert table["soak at 100 rps: memory slope (second half)"] == "met"
    assert table["soak at 100 rps: errors"] == "not met"
    assert table["reconcile 1,000 services × 3 environments: total"] == "not run"
