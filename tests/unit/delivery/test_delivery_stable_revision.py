"""When the engine's status counts as "the new revision is stable": only once every stable workload is exactly at its
desired replicas — a surge replica still running means the rollout has not ended, whatever the counts of ready."""

from __future__ import annotations

from juanie.delivery.settings import stable_revision
from juanie.engines.base import EnvRef, EnvStatus, WorkloadStatus


def _status(*workloads: WorkloadStatus) -> EnvStatus:
    return EnvStatus(env=EnvRef("shop", "staging"), workloads=list(workloads))


def _workload(name: str, desired: int, ready: int, version: str = "v2", **versions: int) -> WorkloadStatus:
    return WorkloadStatus(name=name, desired=desired, ready=ready, updated=ready, version=version,
                          versions=versions or {version: ready})  # fmt: skip


def test_every_stable_workload_at_desired_on_one_version_is_stable() -> None:
    status = _status(_workload("user", 2, 2), _workload("payment", 2, 2), _workload("payment-canary", 1, 0))
    assert stable_revision(status) == "v2"


def test_a_surge_replica_still_running_is_not_yet_stable() -> None:
    assert stable_revision(_status(_workload("user", 2, 3))) == ""


def test_missing_replicas_or_two_versions_are_not_stable() -> None:
    assert stable_revision(_status(_workload("user", 2, 1))) == ""
    assert stable_revision(_status(_workload("user", 2, 2, v1=1, v2=1))) == ""
    assert stable_revision(_status(_workload("user", 2, 2), _workload("order", 1, 1, version="v1"))) == ""
