"""The pure pipeline model: planning by needs, validation, states, masking, spec parsing."""

from __future__ import annotations

import base64
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from juanie.pipeline.model import (
    DEFAULT_STAGES,
    RUN_TRANSITIONS,
    STEP_TRANSITIONS,
    IllegalStateChange,
    Masker,
    PipelineError,
    PipelineSpec,
    Stage,
    Step,
    check_transition,
    mask,
    parse_image_directive,
    plan,
    run_outcome,
    spec_from_mapping,
    stage_outcome,
)


def stage(name: str, needs: tuple[str, ...] | None = None) -> Stage:
    return Stage(name, (Step("s", ("true",)),), needs=needs)


def names(waves: list[list[Stage]]) -> list[list[str]]:
    return [[s.name for s in wave] for wave in waves]


def test_default_order_is_sequential() -> None:
    assert names(plan([stage(n) for n in DEFAULT_STAGES])) == [["build"], ["test"], ["quality"], ["package"]]


def test_needs_form_waves() -> None:
    stages = [
        stage("build"),
        stage("lint", needs=()),
        stage("test", ("build",)),
        stage("quality", ("build",)),
        stage("package", ("test", "quality", "lint")),
    ]
    assert names(plan(stages)) == [["build", "lint"], ["test", "quality"], ["package"]]


def test_cycle_is_reported_with_its_path() -> None:
    stages = [stage("a", ("c",)), stage("b", ("a",)), stage("c", ("b",))]
    with pytest.raises(PipelineError, match=r"a -> c -> b -> a form a cycle"):
        plan(stages)


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([stage("a", ("nope",))], r"stage 'a' needs 'nope', which is not a stage \(stages: a\)"),
        ([stage("a"), stage("a")], "defined twice"),
        ([stage("a", ("a",))], "needs itself"),
        ([Stage("a", ())], "at least one step"),
        ([Stage("a", (Step("x", ("",)),))], "non-empty shell commands"),
        ([Stage("a", (Step("x", ("true",), timeout=0),))], "timeout must be a positive"),
        ([Stage("a", (Step("x", ("true",), env={"BAD-KEY": "1"}),))], "'BAD-KEY' is not valid"),
        ([Stage("bad name", (Step("x", ("true",)),))], "expected a name"),
        ([], "at least one stage"),
    ],
)
def test_invalid_pipelines_are_explained(stages: list[Stage], message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        PipelineSpec(tuple(stages))


@given(st.permutations(["a", "b", "c", "d", "e"]))
def test_plan_respects_every_need_whatever_the_listing_order(order: list[str]) -> None:
    needs = {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c"), "e": ("d",)}
    waves = plan([stage(n, needs[n]) for n in order])
    position = {s.name: i for i, wave in enumerate(waves) for s in wave}
    assert all(position[n] < position[s] for s in needs for n in needs[s])
    assert names(waves)[0] == ["a"]


def test_state_tables_allow_exactly_the_documented_moves() -> None:
    for table, kind in ((RUN_TRANSITIONS, "run"), (STEP_TRANSITIONS, "step")):
        for current, targets in table.items():
            for target in targets:
                assert check_transition(kind, current, target) == target
    with pytest.raises(IllegalStateChange, match=r"succeeded -> running is not allowed \(from succeeded: nothing"):
        check_transition("run", "succeeded", "running")
    with pytest.raises(IllegalStateChange):
        check_transition("step", "queued", "succeeded")


def test_outcomes() -> None:
    assert stage_outcome([("succeeded", False), ("failed", True)]) == "succeeded"
    assert stage_outcome([("succeeded", False), ("failed", False)]) == "failed"
    assert stage_outcome([("cancelled", False), ("succeeded", False)]) == "cancelled"
    assert run_outcome(["succeeded", "skipped"], cancelled=False) == "failed"
    assert run_outcome(["succeeded"], cancelled=True) == "cancelled"
    assert run_outcome(["succeeded", "succeeded"], cancelled=False) == "succeeded"


def test_mask_hides_raw_and_encoded_secret_values() -> None:
    secret = "p@ss w0rd/+="
    text = (
        f"raw={secret} b64={base64.b64encode(secret.encode()).decode()} "
        f"url={urllib.parse.quote(secret, safe='')} plus={urllib.parse.quote_plus(secret)}"
    )
    masked = mask(text, [secret])
    assert masked == "raw=*** b64=*** url=*** plus=***"


def test_mask_handles_multiline_and_short_values() -> None:
    key = "-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----"
    assert mask("line: AAAABBBBCCCC", [key]) == "line: ***"
    assert mask("a b c", ["a", ""]) == "a b c"  # too short to mask meaningfully
    assert mask("no secrets here", []) == "no secrets here"


def test_longer_secret_wins_over_its_prefix() -> None:
    m = Masker(["abcdef", "abcdefghij"])
    assert m("x abcdefghij y abcdef") == "x *** y ***"


_no_star = st.characters(blacklist_characters="*\n\r", blacklist_categories=("Cs",))


@given(st.text(_no_star, min_size=3, max_size=30).filter(lambda s: s.strip() == s), st.text(_no_star, max_size=40))
def test_masked_text_never_contains_the_secret(secret: str, noise: str) -> None:
    assert secret not in mask(noise + secret + noise, [secret])


def test_image_directive() -> None:
    assert parse_image_directive("::juanie-image user=reg.example/shop/user:1a2b") == (
        "user",
        "reg.example/shop/user:1a2b",
    )
    assert parse_image_directive("building image user") is None


def test_spec_from_mapping_builds_and_explains() -> None:
    spec = spec_from_mapping(
        {
            "stages": [
                {"name": "build", "steps": ["make build"]},
                {
                    "name": "test",
                    "needs": ["build"],
                    "parallel": False,
                    "steps": [
                        {"name": "unit", "run": ["pytest -q", "echo ok"], "timeout": "90", "env": {"CI_LEVEL": 2}},
                    ],
                },
            ]
        }
    )
    unit = spec.stage("test").steps[0]
    assert unit.commands == ("pytest -q", "echo ok") and unit.timeout == 90.0 and unit.env == {"CI_LEVEL": "2"}
    assert spec.stage("build").steps[0].name == "step-1"
    assert spec.step_keys == ["build/step-1", "test/unit"]
    assert unit.script == "set -e\npytest -q\necho ok\n"
    with pytest.raises(PipelineError, match=r"pipeline.stages\[0\].steps\[0\].timeout: expected seconds"):
        spec_from_mapping({"stages": [{"name": "b", "steps": [{"run": "x", "timeout": "soon"}]}]})
    with pytest.raises(PipelineError, match="non-empty list of stages"):
        spec_from_mapping({"stages": []})
