"""Pipeline logs on disk: one append-only JSON-lines file per run and step, readable while it grows.

Each line is `{"t": unix time, "s": stream, "m": text}`; a step's file ends with `{"end": state}` so readers
know it is complete, and a run directory gets a `.final` marker when the run is over. Files are only ever
appended to, so a follower keeps a byte offset and never re-reads, and a crash loses at most the line being
written. Text is masked by the executor *before* it reaches this module: secrets never touch the disk.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from juanie.pipeline.model import image_directive

RUN_STEP = ""
"""The step key of run-level lines (checkout, queueing, the final verdict)."""

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_FINAL = ".final"


class LogError(ValueError):
    pass


@dataclass(frozen=True)
class LogLine:
    ts: float
    step: str
    stream: str
    text: str
    offset: int = 0
    """Index of the line in its step's file (or in the merged view when reading a whole run)."""

    def format(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.ts)) + f".{int(self.ts * 1000) % 1000:03d}"
        where = f"[{self.step}] " if self.step else ""
        return f"{stamp} {where}{self.text}"


def _check_run_id(run_id: str) -> str:
    if not _RUN_ID.match(run_id):
        raise LogError(f"invalid run id {run_id!r}: expected letters, digits, '_', '-' or '.'")
    return run_id


def _file_name(step: str) -> str:
    return (urllib.parse.quote(step, safe="") or "_run") + ".jsonl"


def _step_of(file: Path) -> str:
    name = file.name.removesuffix(".jsonl")
    return "" if name == "_run" else urllib.parse.unquote(name)


def _parse(raw: bytes) -> dict | None:
    try:
        rec = json.loads(raw)
    except ValueError:
        return None  # a torn last line after a crash
    return rec if isinstance(rec, dict) else None


class RunLogWriter:
    """Appends one run's lines; usable directly as the executor's `log_sink(step, line)`."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, IO[bytes]] = {}

    def _fh(self, step: str) -> IO[bytes]:
        fh = self._files.get(step)
        if fh is None:
            fh = open(self.run_dir / _file_name(step), "ab")  # noqa: SIM115 - kept open for the run
            self._files[step] = fh
        return fh

    def write(self, step: str, stream: str, text: str, ts: float | None = None) -> None:
        record = {"t": round(ts if ts is not None else time.time(), 6), "s": stream, "m": text}
        fh = self._fh(step)
        fh.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
        fh.flush()

    def __call__(self, step: str, line: LogLine) -> None:
        self.write(step, line.stream, line.text, line.ts)

    def end_step(self, step: str, state: str) -> None:
        fh = self._fh(step)
        fh.write(json.dumps({"t": round(time.time(), 6), "end": state}).encode() + b"\n")
        fh.flush()
        fh.close()
        del self._files[step]

    def end_run(self, state: str) -> None:
        """The executor calls this when the run is over: record the verdict and mark the run final."""
        self.end_step(RUN_STEP, state)
        self.close()

    def close(self) -> None:
        """Mark the run final (followers stop once they have read everything). Safe to call twice."""
        for fh in self._files.values():
            fh.close()
        self._files.clear()
        (self.run_dir / _FINAL).touch()


class ImageGuard:
    """A run's log sink in front of its writer: refuses the `::juanie-image` directives whose image held a secret.

    It reads the lines the executor has already masked. A refused directive gets a line in its step's log right
    after it, and the run ends `failed` (with a run-level line saying why) even if every step succeeded: a release
    must not record, deploy or commit to GitOps an image reference that carried a secret, nor go out without the
    image the pipeline meant it to have. The caller fails the run itself from `refused`.
    """

    def __init__(self, writer: RunLogWriter):
        self.writer = writer
        self.refused: dict[str, str] = {}
        """service -> the step key that announced its refused image."""

    def __call__(self, step: str, line: LogLine) -> None:
        self.writer(step, line)
        found = image_directive(line.text) if line.stream == "stdout" else None
        if found is not None and found.refused:
            self.refused[found.service] = step
            self.writer.write(step, "system", found.refusal())

    def end_step(self, step: str, state: str) -> None:
        self.writer.end_step(step, state)

    def end_run(self, state: str) -> None:
        if self.refused and state == "succeeded":
            self.writer.write(RUN_STEP, "system", f"run failed after all: {self.reason()}")
            state = "failed"
        self.writer.end_run(state)

    def reason(self) -> str:
        where = ", ".join(f"{service} (step {step})" for service, step in sorted(self.refused.items()))
        return f"no release: ::juanie-image refused for {where}: the image reference contained a secret value"


class LogStore:
    """All pipeline logs under `root/<run_id>/`."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def run_dir(self, run_id: str) -> Path:
        return self.root / _check_run_id(run_id)

    def writer(self, run_id: str) -> RunLogWriter:
        return RunLogWriter(self.run_dir(run_id))

    def steps(self, run_id: str) -> list[str]:
        d = self.run_dir(run_id)
        return sorted(_step_of(f) for f in d.glob("*.jsonl")) if d.is_dir() else []

    def is_final(self, run_id: str, step: str | None = None) -> bool:
        if step is None:
            return (self.run_dir(run_id) / _FINAL).exists()
        return self.step_state(run_id, step) is not None or self.is_final(run_id)

    def step_state(self, run_id: str, step: str) -> str | None:
        """The final state recorded at the end of a step's log, or None while it is still open."""
        path = self.run_dir(run_id) / _file_name(step)
        if not path.exists():
            return None
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - 4096))
            tail = fh.read().splitlines()
        rec = _parse(tail[-1]) if tail else None
        return rec.get("end") if rec else None

    def _read_step(self, run_id: str, step: str) -> list[LogLine]:
        path = self.run_dir(run_id) / _file_name(step)
        if not path.exists():
            return []
        lines: list[LogLine] = []
        with open(path, "rb") as fh:
            for raw in fh:
                rec = _parse(raw)
                if rec is None or "end" in rec:
                    continue
                lines.append(LogLine(rec["t"], step, rec.get("s", "stdout"), rec.get("m", ""), len(lines)))
        return lines

    def read(self, run_id: str, step: str | None = None, offset: int = 0, limit: int | None = None) -> list[LogLine]:
        """Lines from `offset` on; for a whole run (`step=None`) all steps merged in time order."""
        if offset < 0:
            raise LogError(f"offset must be >= 0, got {offset}")
        if step is not None:
            lines = self._read_step(run_id, step)
        else:
            merged = sorted(
                (ln for s in self.steps(run_id) for ln in self._read_step(run_id, s)),
                key=lambda ln: (ln.ts, ln.step, ln.offset),
            )
            lines = [LogLine(ln.ts, ln.step, ln.stream, ln.text, i) for i, ln in enumerate(merged)]
        end = None if limit is None else offset + limit
        return lines[offset:end]

    def search(self, run_id: str, text: str, step: str | None = None, case_sensitive: bool = False) -> list[LogLine]:
        """Lines containing `text` (a plain substring, case-insensitive by default)."""
        if not text:
            raise LogError("search text must not be empty")
        needle = text if case_sensitive else text.lower()
        return [ln for ln in self.read(run_id, step) if needle in (ln.text if case_sensitive else ln.text.lower())]

    async def follow(
        self, run_id: str, step: str | None = None, poll_interval: float = 0.2, timeout: float | None = None
    ) -> AsyncIterator[LogLine]:
        """Yield lines as they are written, from the start; end when the step (or the run) is final.

        Polls the files (cheap, works across processes) rather than sharing memory with the writer.
        """
        run_dir = self.run_dir(run_id)
        positions: dict[str, int] = {}
        counts: dict[str, int] = {}
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            finished = (run_dir / _FINAL).exists()
            names = [step] if step is not None else [_step_of(f) for f in sorted(run_dir.glob("*.jsonl"))]
            ended_step = False
            for name in names:
                path = run_dir / _file_name(name)
                if not path.exists():
                    continue
                with open(path, "rb") as fh:
                    fh.seek(positions.get(name, 0))
                    data = fh.read()
                complete = data[: data.rfind(b"\n") + 1]
                positions[name] = positions.get(name, 0) + len(complete)
                for raw in complete.splitlines():
                    rec = _parse(raw)
                    if rec is None:
                        continue
                    if "end" in rec:
                        ended_step = ended_step or name == step
                        continue
                    n = counts.get(name, 0)
                    counts[name] = n + 1
                    yield LogLine(rec["t"], name, rec.get("s", "stdout"), rec.get("m", ""), n)
            if finished or ended_step:
                return
            if deadline is not None and time.monotonic() > deadline:
                return
            await asyncio.sleep(poll_interval)
