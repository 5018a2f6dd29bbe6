"""A unified diff (git's) turned into side-by-side rows for the GitOps page. Pure.

Within a hunk, a run of removed lines followed by a run of added lines is paired row by row (old on the
left, new on the right), the way people read a change; context lines appear on both sides. Very large
diffs are cut at `max_rows` with `truncated` set, so a page never renders a million lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

CellKind = Literal["context", "del", "add", "empty"]
_HUNK = re.compile(r"^@@ -(?P<a>\d+)(?:,(?P<an>\d+))? \+(?P<b>\d+)(?:,(?P<bn>\d+))? @@(?P<title>.*)$")
_GIT_HEADER = re.compile(r"^diff --git a/(?P<a>.+?) b/(?P<b>.+)$")
MAX_ROWS = 4000


@dataclass(frozen=True)
class Cell:
    number: int | None
    text: str
    kind: CellKind


@dataclass(frozen=True)
class Row:
    kind: Literal["line", "hunk"]
    left: Cell
    right: Cell


@dataclass
class FileDiff:
    old_path: str
    new_path: str
    status: Literal["modified", "added", "deleted", "renamed", "binary"] = "modified"
    rows: list[Row] = field(default_factory=list)
    added: int = 0
    removed: int = 0

    @property
    def path(self) -> str:
        return self.new_path if self.status != "deleted" else self.old_path


@dataclass
class SideBySide:
    files: list[FileDiff]
    truncated: bool = False

    @property
    def added(self) -> int:
        return sum(f.added for f in self.files)

    @property
    def removed(self) -> int:
        return sum(f.removed for f in self.files)


_EMPTY = Cell(None, "", "empty")


class _Builder:
    def __init__(self, max_rows: int):
        self.files: list[FileDiff] = []
        self.rows = 0
        self.max_rows = max_rows
        self.truncated = False
        self.dels: list[Cell] = []
        self.adds: list[Cell] = []

    @property
    def current(self) -> FileDiff | None:
        return self.files[-1] if self.files else None

    def add_row(self, row: Row) -> None:
        if self.current is None:
            self.files.append(FileDiff("", ""))
        if self.rows >= self.max_rows:
            self.truncated = True
            return
        self.current.rows.append(row)  # type: ignore[union-attr]
        self.rows += 1

    def flush(self) -> None:
        """Pair the pending removed and added lines into rows."""
        for i in range(max(len(self.dels), len(self.adds))):
            left = self.dels[i] if i < len(self.dels) else _EMPTY
            right = self.adds[i] if i < len(self.adds) else _EMPTY
            self.add_row(Row("line", left, right))
        self.dels, self.adds = [], []


def _strip_prefix(path: str) -> str:
    path = path.strip()
    if path.startswith('"') and path.endswith('"'):
        path = path[1:-1]
    for prefix in ("a/", "b/"):
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


def _header_line(b: _Builder, line: str) -> None:
    """A line between hunks: file names and modes."""
    current = b.current
    if line.startswith("--- "):
        if current is None:
            current = FileDiff("", "")
            b.files.append(current)
        if line[4:].strip() != "/dev/null":
            current.old_path = _strip_prefix(line[4:])
        else:
            current.status = "added"
        return
    if current is None:
        return
    if line.startswith("+++ "):
        if line[4:].strip() != "/dev/null":
            current.new_path = _strip_prefix(line[4:])
        else:
            current.status = "deleted"
    elif line.startswith("new file mode"):
        current.status = "added"
    elif line.startswith("deleted file mode"):
        current.status = "deleted"
    elif line.startswith("rename from "):
        current.status, current.old_path = "renamed", line[len("rename from ") :]
    elif line.startswith("rename to "):
        current.new_path = line[len("rename to ") :]
    elif line.startswith("Binary files "):
        current.status = "binary"


def side_by_side(diff: str, max_rows: int = MAX_ROWS) -> SideBySide:
    """Parse `git diff` output into files of paired rows. Unknown lines are ignored, never fatal.

    A hunk ends when its line counts (`@@ -a,n +b,m @@`) are used up, so content lines that look like
    headers ("--- " inside a YAML change) are never mistaken for the next file.
    """
    b = _Builder(max_rows)
    old_no = new_no = old_left = new_left = 0
    for line in diff.splitlines():
        if line[:1] not in ("", " ", "+", "-", "\\"):
            old_left = new_left = 0  # a miscounted hunk: what cannot be content starts the next header
        if old_left <= 0 and new_left <= 0:
            b.flush()
            header = _GIT_HEADER.match(line)
            if header:
                b.files.append(FileDiff(header.group("a"), header.group("b")))
                continue
            hunk = _HUNK.match(line)
            if hunk:
                if b.current is None:
                    b.files.append(FileDiff("", ""))
                old_no, new_no = int(hunk.group("a")), int(hunk.group("b"))
                old_left = 1 if hunk.group("an") is None else int(hunk.group("an"))
                new_left = 1 if hunk.group("bn") is None else int(hunk.group("bn"))
                b.add_row(Row("hunk", Cell(None, line, "context"), Cell(None, line, "context")))
                continue
            _header_line(b, line)
            continue
        current = b.current
        assert current is not None
        if line.startswith("\\"):
            continue  # "\ No newline at end of file"
        if line.startswith("-"):
            b.dels.append(Cell(old_no, line[1:], "del"))
            current.removed += 1
            old_no, old_left = old_no + 1, old_left - 1
        elif line.startswith("+"):
            b.adds.append(Cell(new_no, line[1:], "add"))
            current.added += 1
            new_no, new_left = new_no + 1, new_left - 1
        else:
            b.flush()
            text = line[1:]
            b.add_row(Row("line", Cell(old_no, text, "context"), Cell(new_no, text, "context")))
            old_no, new_no = old_no + 1, new_no + 1
            old_left, new_left = old_left - 1, new_left - 1
    b.flush()
    return SideBySide([f for f in b.files if f.old_path or f.new_path or f.rows], b.truncated)
