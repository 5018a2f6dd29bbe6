"""Every edge of every lifecycle, legal and illegal, exactly as ARCHITECTURE.md names them."""

from __future__ import annotations

import itertools

import pytest

from juanie.domain.lifecycle import (
    ALL_MACHINES,
    DEPLOYMENT,
    ENVIRONMENT,
    PIPELINE_RUN,
    PROJECT,
    IllegalTransition,
)

EXPECTED = {
    "project": {
        ("initializing", "active"),
        ("active", "archived"),
        ("initializing", "failed"),
        ("active", "suspended"),
        ("suspended", "active"),
    },
    "environment": {
        ("creating", "active"),
        ("active", "updating"),
        ("updating", "active"),
        ("active", "deleting"),
        ("deleting", "deleted"),
        ("creating", "failed"),
        ("updating", "failed"),
    },
    "pipeline run": {
        ("queued", "running"),
        ("running", "succeeded"),
        ("running", "failed"),
        ("running", "cancelled"),
        ("queued", "cancelled"),
    },
    "deployment": {
        ("pending", "running"),
        ("running", "success"),
        ("running", "failed"),
        ("failed", "rolled_back"),
        ("pending", "cancelled"),
        ("running", "cancelled"),
    },
    "approval": {("requested", "approved"), ("requested", "rejected"), ("requested", "expired"),
                 ("requested", "overridden")},
}


@pytest.mark.parametrize("machine", ALL_MACHINES, ids=lambda m: m.name)
def test_every_pair_of_states_is_legal_exactly_when_the_table_says(machine):
    legal = EXPECTED[machine.name]
    for current, target in itertools.product(sorted(machine.states), repeat=2):
        if (current, target) in legal:
            assert machine.check(current, target, "x") == target
        else:
            with pytest.raises(IllegalTransition) as err:
                machine.check(current, target, "x")
            assert f"{current} -> {target} is not allowed" in str(err.value)


def test_initial_states():
    assert (PROJECT.initial, ENVIRONMENT.initial, PIPELINE_RUN.initial, DEPLOYMENT.initial) == (
        "initializing",
        "creating",
        "queued",
        "pending",
    )


def test_final_states_allow_nothing_and_say_so():
    assert DEPLOYMENT.is_final("success") and DEPLOYMENT.is_final("rolled_back")
    assert not DEPLOYMENT.is_final("failed")  # a failed deployment still rolls back
    with pytest.raises(
        IllegalTransition,
        match=r"deployment 42: success -> running is not allowed \(from success: "
        r"nothing \(final state\)\)",
    ):
        DEPLOYMENT.check("success", "running", "42")


def test_unknown_state_is_refused():
    with pytest.raises(IllegalTransition):
        PROJECT.check("banana", "active", "p")
