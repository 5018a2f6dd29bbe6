"""`juanie validate | render | lint | schema` through Typer: one-line errors, exit codes, written trees."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer
from typer.testing import CliRunner

from juanie.cli.spec_cmds import register

MICROSHOP = Path(__file__).resolve().parents[3] / "examples" / "microshop" / "juanie.yaml"


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _invoke(*args: str):
    return CliRunner().invoke(_app(), list(args))


def test_validate_ok_and_broken_file(tmp_path: Path) -> None:
    ok = _invoke("validate", str(MICROSHOP))
    assert ok.exit_code == 0 and "project microshop" in ok.output
    bad = tmp_path / "juanie.yaml"
    bad.write_text("project:\n  name: shop\nservices:\n  web:\n    run: x\n    prot: 2\n")
    result = _invoke("validate", str(bad))
    assert result.exit_code == 1
    assert result.output.strip() == f'{bad}:6:5: services.web.prot: unknown key "prot"; did you mean "port"?'


def test_render_writes_tree_and_prunes_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "devops"
    first = _invoke("render", str(MICROSHOP), "--out", str(out), "--version", "abc1234")
    assert first.exit_code == 0, first.output
    manifests = (out / "rendered/prod/manifests.yaml").read_text()
    assert "juanie.local/microshop/order:abc1234" in manifests
    stale = out / "rendered/old/manifests.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("---\n")
    again = _invoke("render", str(MICROSHOP), "--out", str(out), "--version", "abc1234")
    assert "0 written, 1 removed" in again.output
    assert not stale.exists()


def test_render_rejects_unknown_env_and_bad_image_in_one_line(tmp_path: Path) -> None:
    result = _invoke("render", str(MICROSHOP), "--env", "qa", "--out", str(tmp_path))
    assert result.exit_code == 1 and result.output.startswith('unknown environment "qa"')
    result = _invoke("render", str(MICROSHOP), "--image", "nope", "--out", str(tmp_path))
    assert result.exit_code == 1 and "expected SERVICE=IMAGE" in result.output


def test_lint_scores_microshop_fully() -> None:
    result = _invoke("lint", str(MICROSHOP))
    assert result.exit_code == 0, result.output
    assert "score 100.0%" in result.output


def test_schema_prints_json() -> None:
    result = _invoke("schema")
    assert result.exit_code == 0
    assert json.loads(result.output)["title"] == "ProjectSpec"


def test_missing_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    result = _invoke("render", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert result.output.strip().endswith("missing.yaml:1:1: file not found")
    assert not (tmp_path / "o").exists()
    shutil.rmtree(tmp_path)
