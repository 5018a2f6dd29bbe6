"""Side-by-side rows from git's unified diff: pairing, line numbers, file states, and limits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from juanie.web.sidediff import side_by_side

DIFF = """diff --git a/rendered/dev/app.yaml b/rendered/dev/app.yaml
index 1111111..2222222 100644
--- a/rendered/dev/app.yaml
+++ b/rendered/dev/app.yaml
@@ -3,4 +3,5 @@ metadata:
 kind: Deployment
---- old separator
+--- new separator
 spec:
-  replicas: 1
+  replicas: 3
+  paused: false
diff --git a/rendered/dev/new.yaml b/rendered/dev/new.yaml
new file mode 100644
--- /dev/null
+++ b/rendered/dev/new.yaml
@@ -0,0 +1,2 @@
+a: 1
+b: 2
\\ No newline at end of file
diff --git a/old.txt b/old.txt
deleted file mode 100644
--- a/old.txt
+++ /dev/null
@@ -1 +0,0 @@
-gone
"""


def test_removed_and_added_runs_are_paired_row_by_row_with_line_numbers() -> None:
    result = side_by_side(DIFF)
    first = result.files[0]
    assert (first.path, first.status, first.added, first.removed) == ("rendered/dev/app.yaml", "modified", 3, 2)
    kinds = [(r.left.kind, r.right.kind) for r in first.rows]
    assert kinds == [
        ("context", "context"),
        ("context", "context"),
        ("del", "add"),
        ("context", "context"),
        ("del", "add"),
        ("empty", "add"),
    ]
    sep = first.rows[2]
    # A content line that looks like a file header is content: the hunk's counts say so.
    assert (sep.left.text, sep.right.text) == ("--- old separator", "--- new separator")
    assert (sep.left.number, sep.right.number) == (4, 4)
    assert (first.rows[5].right.number, first.rows[5].right.text) == (7, "  paused: false")


def test_added_and_deleted_files_and_totals() -> None:
    result = side_by_side(DIFF)
    assert [(f.path, f.status) for f in result.files] == [
        ("rendered/dev/app.yaml", "modified"),
        ("rendered/dev/new.yaml", "added"),
        ("old.txt", "deleted"),
    ]
    assert (result.added, result.removed, result.truncated) == (5, 3, False)
    added = result.files[1]
    assert [(r.left.kind, r.right.text) for r in added.rows[1:]] == [("empty", "a: 1"), ("empty", "b: 2")]


def test_huge_diffs_are_cut_and_say_so() -> None:
    body = "\n".join(f"+line {i}" for i in range(500))
    result = side_by_side(f"diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -0,0 +1,500 @@\n{body}\n", max_rows=100)
    assert result.truncated and sum(len(f.rows) for f in result.files) == 100


def test_empty_and_garbage_input() -> None:
    assert side_by_side("").files == []
    assert side_by_side("not a diff\nat all").files == []


@given(st.text(max_size=400))
def test_any_text_parses_without_error(text: str) -> None:
    result = side_by_side(text)
    for f in result.files:
        for row in f.rows:
            assert row.left.kind in ("context", "del", "add", "empty")


def test_a_miscounted_hunk_does_not_swallow_the_next_file() -> None:
    broken = DIFF.replace("@@ -3,4 +3,5 @@", "@@ -3,9 +3,9 @@")
    assert [f.path for f in side_by_side(broken).files] == ["rendered/dev/app.yaml", "rendered/dev/new.yaml", "old.txt"]
