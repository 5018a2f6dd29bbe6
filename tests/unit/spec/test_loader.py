"""Loading juanie.yaml: defaults, positions of problems, several problems at once, branch rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from juanie.spec import (
    SpecError,
    environment_for_branch,
    json_schema,
    load_spec,
    parse_spec,
)

MINIMAL = """\
project:
  name: shop
services:
  web:
    run: python -m web
    port: 8000
"""
MICROSHOP = Path(__file__).resolve().parents[3] / "examples" / "microshop" / "juanie.yaml"


def test_minimal_file_gets_three_default_environments() -> None:
    spec = parse_spec(MINIMAL)
    assert list(spec.environments) == ["dev", "staging", "prod"]
    dev, staging, prod = spec.environments.values()
    assert (dev.replicas, staging.replicas, prod.replicas) == (1, 2, 3)
    assert (dev.size, staging.size, prod.size) == ("S", "M", "L")
    assert (dev.approval, staging.approval, prod.approval) == ("none", "optional", "required")
    assert dev.auto_deploy and not prod.auto_deploy
    assert prod.namespace == "shop-prod"
    assert dev.strategy.type == "rolling"
    assert [s.weight for s in prod.strategy.steps] == [5, 25, 50, 100]
    assert spec.services["web"].run == ["python", "-m", "web"]


def test_named_environment_keeps_defaults_for_fields_not_written() -> None:
    spec = parse_spec(MINIMAL + "environments:\n  prod:\n    replicas: 5\n  qa: {}\n")
    assert list(spec.environments) == ["prod", "qa"]
    prod = spec.environments["prod"]
    assert prod.replicas == 5 and prod.size == "L" and prod.approval == "required"
    assert spec.environments["qa"].namespace == "shop-qa"
    assert spec.environments["qa"].replicas == 1


@pytest.mark.parametrize(
    ("branch", "env"),
    [
        ("feature/login", "dev"),
        ("develop", "dev"),
        ("release/1.2", "staging"),
        ("main", "prod"),
        ("refs/heads/main", "prod"),
        ("hotfix/x", None),
    ],
)
def test_environment_for_branch_follows_default_rules(branch: str, env: str | None) -> None:
    assert environment_for_branch(parse_spec(MINIMAL), branch) == env


def test_all_problems_are_reported_sorted_with_positions() -> None:
    text = MINIMAL + "    prot: 1\nenvironments:\n  prod:\n    replicas: three\n    size: XL\n"
    with pytest.raises(SpecError) as info:
        parse_spec(text, "x.yaml")
    lines = str(info.value).splitlines()
    assert lines == [
        'x.yaml:7:5: services.web.prot: unknown key "prot"; did you mean "port"?',
        'x.yaml:10:15: environments.prod.replicas: expected an integer >= 1, got "three"',
        'x.yaml:11:11: environments.prod.size: expected one of "S", "M", "L", got "XL"',
    ]
    assert [p.line for p in info.value.problems] == [7, 10, 11]


def test_unknown_key_without_close_match_lists_the_allowed_keys() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(MINIMAL + "    zzzzzz: 1\n")
    assert "expected one of: description, run, build, port" in str(info.value)


def test_secret_values_never_appear_in_errors() -> None:
    secret = "sk_live_abcdefghijklmnopqrstuvwxyz0123456789"
    with pytest.raises(SpecError) as info:
        parse_spec(MINIMAL + f"    secrets:\n      API_KEY: {secret}\n")
    assert "sk_live" not in str(info.value)
    assert "services.web.secrets.API_KEY" in str(info.value)


def test_alert_overrides_change_defaults_and_can_disable_them() -> None:
    text = MINIMAL + "alerts:\n  - {name: HighCPU, threshold: 90}\n  - {name: HighMemory, enabled: false}\n"
    rules = {r.name: r for r in parse_spec(text).alert_rules()}
    assert rules["HighCPU"].threshold == 90 and rules["HighCPU"].severity == "P2"
    assert "HighMemory" not in rules
    assert rules["HighErrorRate"].threshold == 5 and rules["HighErrorRate"].for_ == "5m"
    assert rules["HighLatency"].threshold == 2 and rules["HighLatency"].for_ == "10m"


def test_load_spec_reads_a_directory_and_reports_missing_files(tmp_path: Path) -> None:
    (tmp_path / "juanie.yaml").write_text(MINIMAL)
    assert load_spec(tmp_path).name == "shop"
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "nope.yaml")
    assert str(info.value).endswith("nope.yaml:1:1: file not found")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_spec(tmp_path / "bin.yaml")


def test_microshop_spec_is_valid_and_full_featured() -> None:
    spec = load_spec(MICROSHOP)
    assert set(spec.services) == {"user", "product", "order", "payment"}
    assert spec.services["order"].dependencies[:3] == ["user", "product", "payment"]
    assert "PAYMENT_API_KEY" in spec.services["payment"].secrets
    assert spec.pipeline.test.run == ["python -m pytest tests -q"]
    assert spec.load_tests and spec.backups and spec.project.on_call is not None


def test_json_schema_describes_the_top_level_and_forbids_unknown_keys() -> None:
    schema = json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert set(schema["properties"]) >= {"project", "services", "environments", "slo", "alerts", "pipeline"}
    assert schema["additionalProperties"] is False
    assert "services" in schema["required"] and "project" in schema["required"]
