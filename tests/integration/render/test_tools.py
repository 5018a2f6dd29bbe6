"""Render microshop into a directory and check it with the real tools: kubectl kustomize,
kubernetes-validate (strict, Kubernetes 1.31), promtool, amtool and yamllint."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from juanie.render import ReleaseRef, render_tree
from juanie.spec import load_spec

ROOT = Path(__file__).resolve().parents[3]
MICROSHOP = ROOT / "examples" / "microshop" / "juanie.yaml"
YAMLLINT_CONFIG = Path(__file__).with_name("yamllint.yaml")
VENV_BIN = Path(sys.executable).parent
ENVS = ["dev", "staging", "prod"]


def _tool(name: str) -> str:
    found = shutil.which(name) or (str(VENV_BIN / name) if (VENV_BIN / name).exists() else None)
    if found is None:
        pytest.skip(
            f"{name} is not installed (apt-get install -y prometheus prometheus-alertmanager / kubectl)"
        )
    return found


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def tree_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("devops")
    tree = render_tree(load_spec(MICROSHOP), ReleaseRef("abc1234"))
    for rel, content in tree.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return out


def _key(obj: dict) -> tuple[str, str, str]:
    return (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


@pytest.mark.parametrize("env", ENVS)
def test_kustomize_overlay_equals_rendered_manifests(tree_dir: Path, env: str) -> None:
    result = _run(_tool("kubectl"), "kustomize", f"overlays/{env}", cwd=tree_dir)
    assert result.returncode == 0, result.stderr
    built = {_key(o): o for o in yaml.safe_load_all(result.stdout) if o}
    text = (tree_dir / f"rendered/{env}/manifests.yaml").read_text()
    rendered = {_key(o): o for o in yaml.safe_load_all(text) if o}
    assert sorted(built) == sorted(rendered)
    for key, obj in rendered.items():
        assert built[key] == obj, key


def test_manifests_validate_strictly_for_kubernetes_1_31(tree_dir: Path) -> None:
    files = [f"rendered/{env}/manifests.yaml" for env in ENVS]
    result = _run(_tool("kubernetes-validate"), "--strict", "-k", "1.31", "--quiet", *files, cwd=tree_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout


def test_strict_validation_would_catch_an_unknown_field(tree_dir: Path) -> None:
    """A control: the validator really checks the schema (an invented field fails)."""
    bad = tree_dir / "bad.yaml"
    doc = yaml.safe_load_all((tree_dir / "rendered/dev/manifests.yaml").read_text())
    dep = next(o for o in doc if o and o["kind"] == "Deployment")
    dep["spec"]["replicaz"] = 2
    bad.write_text(yaml.safe_dump(dep))
    try:
        result = _run(
            _tool("kubernetes-validate"), "--strict", "-k", "1.31", "--quiet", "bad.yaml", cwd=tree_dir
        )
    finally:
        bad.unlink()
    assert result.returncode != 0


def test_promtool_accepts_rules_and_config(tree_dir: Path) -> None:
    promtool = _tool("promtool")
    rules = _run(
        promtool, "check", "rules", "rules/alerts.yaml", "rules/slo.yaml", cwd=tree_dir / "monitoring"
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = _run(promtool, "check", "config", "prometheus.yaml", cwd=tree_dir / "monitoring")
    assert config.returncode == 0, config.stdout + config.stderr


def test_amtool_accepts_alertmanager_config(tree_dir: Path) -> None:
    result = _run(_tool("amtool"), "check-config", "monitoring/alertmanager.yaml", cwd=tree_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 receivers" in result.stdout


def test_yamllint_passes_on_every_yaml_file(tree_dir: Path) -> None:
    files = sorted(str(p.relative_to(tree_dir)) for p in tree_dir.rglob("*.yaml"))
    assert len(files) > 20
    result = _run(_tool("yamllint"), "--strict", "-c", str(YAMLLINT_CONFIG), *files, cwd=tree_dir)
    assert result.returncode == 0, result.stdout + result.stderr
