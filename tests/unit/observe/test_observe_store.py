"""The embedded store: appends, selection, the series limit, retention with rollups, snapshots."""

from __future__ import annotations

import numpy as np
import pytest

from juanie.observe.matchers import Matcher
from juanie.observe.metrics.model import Sample
from juanie.observe.metrics.store import MetricStore, SeriesLimitError, SnapshotError

T0 = 1_700_000_000.0  # divisible by 300? no matter: compaction aligns itself


def test_select_filters_by_matchers_and_time() -> None:
    store = MetricStore()
    for i in range(10):
        store.append("m", {"env": "dev", "svc": "a"}, i, T0 + i)
        store.append("m", {"env": "prod", "svc": "a"}, 100 + i, T0 + i)
    (series,) = store.select("m", [Matcher("env", "=", "prod")], T0 + 2, T0 + 4)
    assert series.labels == {"env": "prod", "svc": "a"}
    assert series.timestamps.tolist() == [T0 + 2, T0 + 3, T0 + 4]
    assert series.values.tolist() == [102, 103, 104]
    assert len(store.select(None, [Matcher("__name__", "=~", "m|n"), Matcher("env", "!=", "prod")])) == 1


def test_out_of_order_and_duplicate_samples_are_dropped_and_counted() -> None:
    store = MetricStore()
    assert store.append("m", {}, 1, T0 + 10)
    assert not store.append("m", {}, 2, T0 + 10)
    assert not store.append("m", {}, 3, T0 + 5)
    accepted = store.append_many([Sample("m", {}, 4, T0 + 11), Sample("m", {}, 5, T0 + 1)])
    assert accepted == 1 and store.dropped_samples == 3
    assert store.select("m")[0].values.tolist() == [1, 4]


def test_series_limit_names_the_offending_series() -> None:
    store = MetricStore(max_series=2)
    store.append("m", {"id": "1"}, 1, T0)
    store.append("m", {"id": "2"}, 1, T0)
    store.append("m", {"id": "2"}, 2, T0 + 1)  # existing series still accepted
    with pytest.raises(SeriesLimitError, match=r"2 series; refusing new series m\{'id': '3'\}.*unbounded"):
        store.append("m", {"id": "3"}, 1, T0)


def test_compaction_downsamples_counters_to_last_and_gauges_to_mean_min_max() -> None:
    step = 300.0
    store = MetricStore(retention_raw=3600, rollup_step=step, retention_rollup=86400)
    start = 1_700_000_100.0 - (1_700_000_100.0 % step)  # aligned to a rollup bucket
    for i in range(240):  # one hour at 15 s
        ts = start + 15 * i
        store.append("c_total", {}, 2 * i, ts)
        store.append("g", {}, float(i % 20), ts)
    now = start + 3600 + 1200  # raw retention ends at start + 1200: the first four buckets roll up
    store.compact(now)
    counter = store.select("c_total")[0]
    gauge = store.select("g")[0]
    assert counter.timestamps[:4].tolist() == [start + 285 + 300 * k for k in range(4)]
    assert counter.values[:4].tolist() == [2 * (19 + 20 * k) for k in range(4)]  # last value of each bucket
    assert gauge.values[:4].tolist() == [9.5] * 4  # mean of 0..19
    assert gauge.minimums is not None and gauge.minimums[:4].tolist() == [0] * 4
    assert gauge.maximums is not None and gauge.maximums[:4].tolist() == [19] * 4
    assert len(gauge) == 4 + (240 - 80)  # four rollups then the raw tail
    assert np.all(np.diff(gauge.timestamps) > 0)


def test_rollup_retention_drops_old_data_and_empty_series() -> None:
    store = MetricStore(retention_raw=600, rollup_step=60, retention_rollup=3600)
    for i in range(10):
        store.append("g", {}, i, T0 + 60 * i)
    store.compact(T0 + 60 * 9 + 600 + 120)
    rolled = store.select("g")[0]
    assert rolled.minimums is not None and len(rolled) == 10  # one point per minute: every bucket keeps one
    store.compact(T0 + 100_000)
    assert store.select("g") == [] and store.series_count() == 0 and store.names() == []


def test_rate_over_rollups_still_sees_the_counter_growth() -> None:
    from juanie.observe.metrics.query import QueryEngine

    store = MetricStore(retention_raw=600, rollup_step=300, retention_rollup=86400)
    for i in range(1000):
        store.append("c_total", {}, float(i), T0 + 15 * i)  # 1/15 per second
    store.compact(T0 + 15 * 1000)
    engine = QueryEngine(store)
    rate = engine.query("rate(c_total[1h])", T0 + 15 * 400).samples()[0][1]
    assert rate == pytest.approx(1 / 15, rel=0.05)


def test_snapshot_round_trip_and_bad_files(tmp_path) -> None:
    store = MetricStore(retention_raw=600, rollup_step=60)
    for i in range(50):
        store.append("c_total", {"a": "1"}, i, T0 + 30 * i)
        store.append("g", {"b": "2"}, i * 0.5, T0 + 30 * i)
    store.set_type("g", "gauge")
    store.compact(T0 + 30 * 50)
    path = tmp_path / "snap" / "metrics.npz"
    store.snapshot(path)
    assert [p.name for p in path.parent.iterdir()] == ["metrics.npz"]  # no temp file left behind
    loaded = MetricStore().load(path)
    for name in ("c_total", "g"):
        a, b = store.select(name)[0], loaded.select(name)[0]
        assert a.labels == b.labels
        assert a.timestamps.tolist() == b.timestamps.tolist() and a.values.tolist() == b.values.tolist()
    assert loaded.series_count() == 2
    loaded.append("g", {"b": "2"}, 1.0, T0 + 30 * 50)  # appends continue after the last loaded point
    assert loaded.select("g")[0].values[-1] == 1.0
    (tmp_path / "junk.npz").write_bytes(b"not a snapshot")
    with pytest.raises(SnapshotError, match="unreadable"):
        MetricStore().load(tmp_path / "junk.npz")
    with pytest.raises(SnapshotError, match="does not exist"):
        MetricStore().load(tmp_path / "missing.npz")


def test_memory_accounting_follows_retention() -> None:
    store = MetricStore(retention_raw=3600, rollup_step=300)
    for i in range(24 * 240):
        store.append("g", {}, 1.0, T0 + 15 * i)
    before = store.memory_bytes()
    assert before >= 24 * 240 * 16
    store.compact(T0 + 15 * 24 * 240)
    after = store.memory_bytes()
    assert after < before / 5
