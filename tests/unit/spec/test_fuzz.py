"""Property tests: no input makes the loader crash; it returns a spec or a SpecError of one-line problems."""

from __future__ import annotations

import re

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from juanie.spec import ProjectSpec, SpecError, parse_spec

LINE = re.compile(r"^juanie\.yaml:\d+:\d+: [^\n]+$")
KEYS = [
    "project",
    "name",
    "services",
    "run",
    "port",
    "environments",
    "replicas",
    "size",
    "strategy",
    "type",
    "steps",
    "alerts",
    "slo",
    "env",
    "secrets",
    "dependencies",
    "web",
    "prod",
    "dev",
    "autoscaling",
    "min",
    "max",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 70000),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["S", "XL", "canary", "30s", "python -m web", "postgres", "P1", "100m", "-1"]),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), children, max_size=5),
    ),
    max_leaves=30,
)


def _check(text: str) -> None:
    try:
        result = parse_spec(text)
    except SpecError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert LINE.match(str(problem)), str(problem)
            assert problem.line >= 1 and problem.col >= 1
        return
    assert isinstance(result, ProjectSpec)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_the_loader(text: str) -> None:
    _check(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_arbitrary_yaml_documents_never_crash_the_loader(doc: object) -> None:
    _check(yaml.safe_dump(doc))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["replicas", "size", "approval", "branches", "auto_deploy", "strategy", "namespace"]),
    scalars | st.lists(scalars, max_size=3),
)
def test_any_value_in_an_environment_field_never_crashes(field: str, value: object) -> None:
    doc = {
        "project": {"name": "shop"},
        "services": {"web": {"run": "x"}},
        "environments": {"prod": {field: value}},
    }
    _check(yaml.safe_dump(doc))


def test_alias_bomb_is_rejected_quickly() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        bomb += f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
    try:
        parse_spec(bomb)
    except SpecError as exc:
        assert "too large" in str(exc)
    else:
        raise AssertionError("an alias bomb must be rejected")
