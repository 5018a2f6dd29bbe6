"""Lifecycles as data: each table *is* the documentation of what may follow what.

The UI draws these tables, the API refuses illegal moves with HTTP 409, and the tests walk every edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class IllegalTransition(Exception):
    """A state change the lifecycle does not allow; the message names the subject and both states."""

    def __init__(self, machine: str, subject: str, current: str, target: str, allowed: frozenset[str]):
        self.machine, self.subject, self.current, self.target, self.allowed = (
            machine,
            subject,
            current,
            target,
            allowed,
        )
        choices = ", ".join(sorted(allowed)) or "nothing (final state)"
        super().__init__(
            f"{machine} {subject}: {current} -> {target} is not allowed (from {current}: {choices})"
        )


@dataclass(frozen=True)
class StateMachine:
    name: str
    initial: str
    edges: Mapping[str, frozenset[str]]

    @classmethod
    def of(cls, name: str, initial: str, table: Mapping[str, set[str]]) -> StateMachine:
        return cls(name, initial, {state: frozenset(nexts) for state, nexts in table.items()})

    @property
    def states(self) -> frozenset[str]:
        found = set(self.edges)
        for nexts in self.edges.values():
            found |= nexts
        return frozenset(found)

    def allowed(self, current: str) -> frozenset[str]:
        return self.edges.get(current, frozenset())

    def is_final(self, state: str) -> bool:
        return not self.allowed(state)

    def can(self, current: str, target: str) -> bool:
        return target in self.allowed(current)

    def check(self, current: str, target: str, subject: str = "") -> str:
        """Return `target` if `current -> target` is legal, else raise IllegalTransition."""
        if current not in self.states:
            raise IllegalTransition(self.name, subject, current, target, frozenset())
        if not self.can(current, target):
            raise IllegalTransition(self.name, subject, current, target, self.allowed(current))
        return target


PROJECT = StateMachine.of(
    "project",
    "initializing",
    {
        "initializing": {"active", "failed"},
        "active": {"archived", "suspended"},
        "suspended": {"active"},
    },
)

ENVIRONMENT = StateMachine.of(
    "environment",
    "creating",
    {
        "creating": {"active", "failed"},
        "active": {"updating", "deleting"},
        "updating": {"active", "failed"},
        "deleting": {"deleted"},
    },
)

PIPELINE_RUN = StateMachine.of(
    "pipeline run",
    "queued",
    {
        "queued": {"running", "cancelled"},
        "running": {"succeeded", "failed", "cancelled"},
    },
)

DEPLOYMENT = StateMachine.of(
    "deployment",
    "pending",
    {
        "pending": {"running", "cancelled"},
        "running": {"success", "failed", "cancelled"},
        "failed": {"rolled_back"},
    },
)

APPROVAL = StateMachine.of(
    "approval",
    "requested",
    # overridden: an owner let a deployment through without a second person (four eyes), with a reason.
    {"requested": {"approved", "rejected", "expired", "overridden"}},
)

ALL_MACHINES: tuple[StateMachine, ...] = (PROJECT, ENVIRONMENT, PIPELINE_RUN, DEPLOYMENT, APPROVAL)
