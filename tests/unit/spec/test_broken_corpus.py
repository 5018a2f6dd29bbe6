"""Every broken spec in tests/data/broken_specs gives exactly its one expected line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from juanie.spec import SpecError, parse_spec

CORPUS = Path(__file__).resolve().parents[2] / "data" / "broken_specs"
CASES = sorted(CORPUS.glob("*.yaml"))


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 25
    assert all(case.with_suffix(".expected").is_file() for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_broken_spec_gives_its_expected_line(case: Path) -> None:
    expected = case.with_suffix(".expected").read_text(encoding="utf-8").strip()
    with pytest.raises(SpecError) as info:
        parse_spec(case.read_text(encoding="utf-8"), case.name)
    assert len(info.value.problems) == 1
    assert str(info.value) == expected
    problem = info.value.problems[0]
    line_text = case.read_text(encoding="utf-8").splitlines() or [""]
    assert 1 <= problem.line <= max(1, len(line_text) + 1)
