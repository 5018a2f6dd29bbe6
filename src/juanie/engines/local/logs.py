"""Application logs: every replica's stdout/stderr, line by line, labelled, with size-based retention.

A replica writes straight into its own raw files (so it never blocks on, or dies with, the server). The
collector
in the server reads the new complete lines of each raw file, labels them (project, env, service, version,
instance, stream), parses JSON lines, and appends them to a per-instance record file
`records/<instance>.jsonl`
that rotates at a size limit keeping `keep` old files. A raw file is truncated once fully read and over its
limit
(the child appends with O_APPEND, so it simply continues at the start). Offsets are persisted, so a restarted
server neither loses nor repeats lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

_LEVELS = {
    "trace": "debug",
    "debug": "debug",
    "info": "info",
    "information": "info",
    "notice": "info",
    "warn": "warning",
    "warning": "warning",
    "error": "error",
    "err": "error",
    "critical": "critical",
    "fatal": "critical",
    "panic": "critical",
}
_TEXT_LEVEL = re.compile(r"\b(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRITICAL|FATAL|PANIC)\b")
_MAX_LINE = 64 * 1024


@dataclass(frozen=True)
class LogLabels:
    project: str
    env: str
    service: str
    version: str
    instance: str


@dataclass(frozen=True)
class LogRecord:
    project: str
    env: str
    service: str
    version: str
    instance: str
    stream: str
    ts: float
    level: str
    msg: str
    raw: str
    fields: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LogFilter:
    """Which records a reader wants; empty fields match everything, `contains` is a substring of the line."""

    project: str = ""
    env: str = ""
    service: str = ""
    version: str = ""
    instance: str = ""
    stream: str = ""
    level: str = ""  # minimum level: debug < info < warning < error < critical
    contains: str = ""

    def matches(self, r: LogRecord) -> bool:
        for name in ("project", "env", "service", "version", "instance", "stream"):
            want = getattr(self, name)
            if want and getattr(r, name) != want:
                return False
        if self.level and _rank(r.level) < _rank(self.level):
            return False
        return not (self.contains and self.contains not in r.raw)


def _rank(level: str) -> int:
    order = ["debug", "info", "warning", "error", "critical"]
    return order.index(level) if level in order else 1


def _ts(value: Any, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) / 1000 if value > 1e11 else float(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return default


def parse_line(raw: str, labels: LogLabels, stream: str, observed: float) -> LogRecord:
    """One output line -> a labelled record. JSON objects give level/msg/ts and their fields; text is scanned
    for a
    level word. Pure."""
    fields: dict[str, Any] = {}
    level = ""
    msg = raw
    ts = observed
    text = raw.strip()
    if text.startswith("{") and text.endswith("}"):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            fields = doc
            level = str(doc.get("level") or doc.get("levelname") or doc.get("severity") or "").lower()
            msg = str(doc.get("msg") or doc.get("message") or doc.get("event") or raw)
            ts = _ts(doc.get("ts") or doc.get("time") or doc.get("timestamp"), observed)
    if not level:
        m = _TEXT_LEVEL.search(raw[:200])
        level = m.group(1).lower() if m else ""
    return LogRecord(
        project=labels.project,
        env=labels.env,
        service=labels.service,
        version=labels.version,
        instance=labels.instance,
        stream=stream,
        ts=ts,
        level=_LEVELS.get(level, "info"),
        msg=msg,
        raw=raw,
        fields=fields,
    )


def record_from_dict(d: dict[str, Any]) -> LogRecord | None:
    try:
        return LogRecord(**d)
    except TypeError:
        return None


@dataclass(frozen=True)
class LogSource:
    """A raw output file of one replica and the labels its lines get."""

    path: Path
    labels: LogLabels
    stream: str  # "stdout" | "stderr"


class LogCollector:
    """Moves new lines from raw files into labelled record files; the supervisor calls `poll` every step."""

    def __init__(
        self,
        root: Path,
        max_bytes: int = 2 * 1024 * 1024,
        keep: int = 2,
        raw_max_bytes: int = 1024 * 1024,
        max_total_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.root = Path(root)
        self.max_total_bytes = max_total_bytes
        self._appends = 0
        self.max_bytes = max_bytes
        self.keep = keep
        self.raw_max_bytes = raw_max_bytes
        self._offsets_path = self.root / "offsets.json"
        try:
            self._offsets: dict[str, int] = json.loads(self._offsets_path.read_text())
        except (OSError, ValueError):
            self._offsets = {}

    def poll(self, sources: list[LogSource], now: float | None = None) -> list[LogRecord]:
        """Read what was appended since the last poll; return the new records (already stored)."""
        now = time.time() if now is None else now
        out: list[LogRecord] = []
        changed = False
        for src in sources:
            key = str(src.path)
            try:
                size = src.path.stat().st_size
            except OSError:
                continue
            off = self._offsets.get(key, 0)
            if size < off:  # truncated by someone else: start over
                off = 0
            if size == off:
                continue
            with open(src.path, "rb") as f:
                f.seek(off)
                chunk = f.read(min(size - off, 4 * 1024 * 1024))
            end = chunk.rfind(b"\n")
            if end < 0:
                if len(chunk) < _MAX_LINE:
                    continue
                end = len(chunk) - 1  # an endless line: cut it rather than hold it forever
            lines = chunk[: end + 1].decode("utf-8", errors="replace").splitlines()
            off += end + 1
            records = [parse_line(line[:_MAX_LINE], src.labels, src.stream, now) for line in lines if line]
            self._append(src.labels.instance, records)
            out.extend(records)
            if off >= self.raw_max_bytes and off == size:
                with contextlib.suppress(OSError):
                    os.truncate(src.path, 0)
                off = 0
            self._offsets[key] = off
            changed = True
        if changed:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self._offsets_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._offsets))
            os.replace(tmp, self._offsets_path)
        return out

    def forget(self, paths: list[Path]) -> None:
        for p in paths:
            self._offsets.pop(str(p), None)

    def _append(self, instance: str, records: list[LogRecord]) -> None:
        if not records:
            return
        folder = self.root / "records"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{instance}.jsonl"
        data = "".join(json.dumps(r.to_dict(), separators=(",", ":")) + "\n" for r in records).encode()
        with contextlib.suppress(OSError):
            if path.stat().st_size + len(data) > self.max_bytes:
                self._rotate(path)
        with open(path, "ab") as f:
            f.write(data)
        self._appends += 1
        if self._appends % 200 == 0:
            self.prune()

    def prune(self) -> None:
        """Keep the environment's records under `max_total_bytes`: files of replicas long gone go first."""
        files = []
        for p in _record_files(self.root):
            with contextlib.suppress(OSError):
                st = p.stat()
                files.append((st.st_mtime, st.st_size, p))
        total = sum(size for _, size, _ in files)
        for _, size, p in sorted(files, key=lambda f: f[0]):
            if total <= self.max_total_bytes:
                break
            p.unlink(missing_ok=True)
            total -= size

    def _rotate(self, path: Path) -> None:
        for i in range(self.keep, 0, -1):
            src = path.with_name(f"{path.name}.{i - 1}") if i > 1 else path
            dst = path.with_name(f"{path.name}.{i}")
            if src.exists():
                os.replace(src, dst)
        if self.keep == 0:
            path.unlink(missing_ok=True)


def _record_files(root: Path) -> list[Path]:
    folder = root / "records"
    return sorted(folder.glob("*.jsonl*")) if folder.is_dir() else []


def _read_file(path: Path) -> list[LogRecord]:
    out = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            rec = record_from_dict(json.loads(line))
            if rec is not None:
                out.append(rec)
    return out


def read_logs(root: Path, filters: LogFilter | None = None, since: float = 0.0, limit: int = 1000) -> list[LogRecord]:
    """The newest `limit` records at or after `since` that match `filters`, oldest first."""
    filters = filters or LogFilter()
    found: list[LogRecord] = []
    for path in _record_files(Path(root)):
        if filters.instance and not path.name.startswith(filters.instance + "."):
            continue
        found.extend(r for r in _read_file(path) if r.ts >= since and filters.matches(r))
    found.sort(key=lambda r: r.ts)
    return found[-limit:] if limit > 0 else found


async def follow(
    root: Path, filters: LogFilter | None = None, poll_interval: float = 0.25, from_start: bool = False
) -> AsyncIterator[LogRecord]:
    """Yield matching records as they are stored, like `tail -f` across all replicas (for SSE)."""
    filters = filters or LogFilter()
    root = Path(root)
    offsets: dict[Path, int] = {}
    if not from_start:
        for path in _record_files(root):
            if not path.name.endswith(".jsonl"):
                continue
            with contextlib.suppress(OSError):
                offsets[path] = path.stat().st_size
    while True:
        batch: list[LogRecord] = []
        folder = root / "records"
        paths = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
        for path in paths:
            try:
                size = path.stat().st_size
            except OSError:
                continue
            off = offsets.get(path, 0)
            if size < off:  # rotated: the new file starts from zero
                off = 0
            if size == off:
                continue
            with open(path, "rb") as f:
                f.seek(off)
                chunk = f.read(size - off)
            end = chunk.rfind(b"\n")
            if end < 0:
                continue
            offsets[path] = off + end + 1
            for line in chunk[: end + 1].decode("utf-8", errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    rec = record_from_dict(json.loads(line))
                    if rec is not None and filters.matches(rec):
                        batch.append(rec)
        batch.sort(key=lambda r: r.ts)
        for rec in batch:
            yield rec
        await asyncio.sleep(poll_interval)
