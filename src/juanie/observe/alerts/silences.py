"""Silences (Alertmanager's: matchers, a time window, who and why) and inhibition rules."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from juanie.observe.matchers import Matcher, matches_all


class SilenceError(ValueError):
    """A silence that would be invalid in Alertmanager too (no matchers, catch-all, no author or reason)."""


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str

    def __post_init__(self) -> None:
        if not self.matchers:
            raise SilenceError(f"silence {self.id}: needs at least one matcher")
        if all(m.matches_empty() for m in self.matchers):
            raise SilenceError(
                f"silence {self.id}: at least one matcher must not match an empty label "
                "(a silence may not mute every alert)"
            )
        if self.ends_at <= self.starts_at:
            raise SilenceError(f"silence {self.id}: ends_at must be after starts_at")
        if not self.created_by.strip() or not self.comment.strip():
            raise SilenceError(f"silence {self.id}: created_by and comment are required")

    def state(self, now: float) -> str:
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"

    def mutes(self, labels: Mapping[str, str], now: float) -> bool:
        return self.state(now) == "active" and matches_all(self.matchers, labels)


def silenced_by(labels: Mapping[str, str], silences: Iterable[Silence], now: float) -> list[str]:
    """Ids of the active silences that mute an alert with ``labels``."""
    return [s.id for s in silences if s.mutes(labels, now)]


def is_silenced(labels: Mapping[str, str], silences: Iterable[Silence], now: float) -> bool:
    return any(s.mutes(labels, now) for s in silences)


@dataclass(frozen=True)
class InhibitRule:
    """While an alert matching ``source_matchers`` fires, alerts matching ``target_matchers`` with the same
    values of ``equal`` are muted; an alert never inhibits itself."""

    source_matchers: tuple[Matcher, ...]
    target_matchers: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()

    def inhibits(self, target: Mapping[str, str], firing: Sequence[Mapping[str, str]]) -> bool:
        if not matches_all(self.target_matchers, target):
            return False
        for source in firing:
            if source is target or dict(source) == dict(target):
                continue
            if matches_all(self.source_matchers, source) and all(
                source.get(k, "") == target.get(k, "") for k in self.equal
            ):
                return True
        return False


DEFAULT_INHIBIT_RULES: tuple[InhibitRule, ...] = (
    InhibitRule(
        source_matchers=(Matcher("alertname", "=", "ServiceDown"),),
        target_matchers=(Matcher("alertname", "=~", "HighLatency|HighErrorRate"),),
        equal=("env", "service"),
    ),
)


def is_inhibited(labels: Mapping[str, str], firing: Sequence[Mapping[str, str]], rules: Iterable[InhibitRule]) -> bool:
    return any(rule.inhibits(labels, firing) for rule in rules)
