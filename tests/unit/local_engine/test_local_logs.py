"""Log lines -> labelled records, the collector's offsets and rotation, reading with filters."""

from __future__ import annotations

import json
from pathlib import Path

from juanie.engines.local.logs import LogCollector, LogFilter, LogLabels, LogSource, parse_line, read_logs

L = LogLabels("shop", "dev", "api", "v1", "api-1")


def test_json_lines_give_level_message_time_and_fields() -> None:
    r = parse_line('{"level": "WARNING", "msg": "slow", "ts": 1700000000.5, "ms": 812}', L, "stdout", 1.0)
    assert (r.level, r.msg, r.ts, r.fields["ms"]) == ("warning", "slow", 1700000000.5, 812)
    r = parse_line('{"severity": "err", "message": "x", "time": "2024-01-01T00:00:00Z"}', L, "stderr", 1.0)
    assert r.level == "error" and r.ts == 1704067200.0
    r = parse_line("2024 ERROR boom", L, "stderr", 5.0)
    assert (r.level, r.msg, r.ts, r.instance) == ("error", "2024 ERROR boom", 5.0, "api-1")
    assert parse_line("{not json}", L, "stdout", 1.0).level == "info"


def test_collector_reads_complete_lines_once_and_survives_a_restart(tmp_path: Path) -> None:
    raw = tmp_path / "raw.log"
    raw.write_text("one\ntwo\npart")
    src = [LogSource(raw, L, "stdout")]
    c = LogCollector(tmp_path / "logs")
    assert [r.raw for r in c.poll(src, now=1.0)] == ["one", "two"]
    assert c.poll(src, now=2.0) == []
    with open(raw, "a") as f:
        f.write("ial\nthree\n")
    again = LogCollector(tmp_path / "logs")  # a restarted server continues where the last one stopped
    assert [r.raw for r in again.poll(src, now=3.0)] == ["partial", "three"]
    assert [r.raw for r in read_logs(tmp_path / "logs")] == ["one", "two", "partial", "three"]


def test_retention_rotates_record_files_and_truncates_raw_files(tmp_path: Path) -> None:
    raw = tmp_path / "raw.log"
    c = LogCollector(tmp_path / "logs", max_bytes=4000, keep=1, raw_max_bytes=1000)
    src = [LogSource(raw, L, "stdout")]
    for i in range(40):
        with open(raw, "a") as f:
            f.write(json.dumps({"msg": f"line {i}", "pad": "x" * 60}) + "\n")
        c.poll(src, now=float(i))
    assert raw.stat().st_size < 1000 + 200
    files = sorted(p.name for p in (tmp_path / "logs" / "records").iterdir())
    assert files == ["api-1.jsonl", "api-1.jsonl.1"]
    assert sum(p.stat().st_size for p in (tmp_path / "logs" / "records").iterdir()) <= 2 * 4000
    kept = read_logs(tmp_path / "logs")
    assert kept[-1].msg == "line 39" and kept[0].msg != "line 0"


def test_read_logs_filters_and_limits(tmp_path: Path) -> None:
    c = LogCollector(tmp_path / "logs")
    out, err = tmp_path / "o.log", tmp_path / "e.log"
    out.write_text("INFO a\nDEBUG b\n")
    err.write_text("ERROR c\n")
    c.poll([LogSource(out, L, "stdout"), LogSource(err, L, "stderr")], now=10.0)
    root = tmp_path / "logs"
    assert [r.raw for r in read_logs(root, LogFilter(level="warning"))] == ["ERROR c"]
    assert [r.raw for r in read_logs(root, LogFilter(stream="stdout", contains="b"))] == ["DEBUG b"]
    assert len(read_logs(root, limit=2)) == 2
    assert read_logs(root, since=11.0) == []
    assert read_logs(root, LogFilter(service="other")) == []


def test_prune_keeps_the_environment_under_its_total_budget_newest_first(tmp_path: Path) -> None:
    import os

    c = LogCollector(tmp_path / "logs", max_total_bytes=3000)
    for i in range(5):
        raw = tmp_path / f"r{i}.log"
        raw.write_text("x" * 900 + "\n")
        c.poll([LogSource(raw, LogLabels("shop", "dev", "api", "v1", f"api-{i}"), "stdout")], now=float(i))
        rec = tmp_path / "logs" / "records" / f"api-{i}.jsonl"
        os.utime(rec, (1000 + i, 1000 + i))
    one = (tmp_path / "logs" / "records" / "api-0.jsonl").stat().st_size
    c.max_total_bytes = int(one * 2.5)
    c.prune()
    left = sorted(p.name for p in (tmp_path / "logs" / "records").iterdir())
    assert left == ["api-3.jsonl", "api-4.jsonl"]
