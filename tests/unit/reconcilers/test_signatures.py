"""Child events wake the parent only when they can change its decision."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from mlops_operator import contracts
from mlops_operator.metrics import Metrics
from mlops_operator.reconcilers.context import Key, ReconcileContext
from mlops_operator.reconcilers.controller import Controller
from mlops_operator.reconcilers.queue import Lane
from mlops_operator.reconcilers.signatures import ChildSignatures
from tests.unit.factories import SETTINGS
from tests.unit.reconcilers.fake_kube import FakeKube


def job(uid: str = "job-1", *, active: int = 1, done: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"active": active}
    if done is not None:
        status = {"succeeded": 1, "conditions": [{"type": done, "status": "True"}]}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "train-1", "namespace": "ns", "uid": uid, "generation": 1, "resourceVersion": "1"},
        "status": status,
    }


def touched(obj: dict[str, Any]) -> dict[str, Any]:
    """The same object after a metadata-only update (an annotation, a new resourceVersion)."""
    changed = copy.deepcopy(obj)
    changed["metadata"]["annotations"] = {"someone": "was-here"}
    changed["metadata"]["resourceVersion"] = str(int(changed["metadata"]["resourceVersion"]) + 1)
    return changed


def test_a_job_wakes_its_parent_when_it_starts_and_when_it_finishes_only() -> None:
    signatures = ChildSignatures()
    running, complete = job(), job(done="Complete")
    assert signatures.wakes_parent("ADDED", running)
    assert not signatures.wakes_parent("MODIFIED", touched(running))  # metadata only
    assert signatures.wakes_parent("MODIFIED", job(active=0))  # its status moved
    assert signatures.wakes_parent("MODIFIED", complete)
    later = touched(complete)
    later["status"]["completionTime"] = "2026-12-01T00:00:00Z"
    assert not signatures.wakes_parent("MODIFIED", later)  # a complete Job stays complete
    assert not signatures.wakes_parent("DELETED", complete)  # its TTL ran out: nothing to decide
    assert len(signatures) == 0  # forgotten at DELETED


def test_the_deletion_of_a_running_job_or_of_any_other_child_wakes_the_parent() -> None:
    signatures = ChildSignatures()
    assert signatures.wakes_parent("DELETED", job())
    deployment = {"kind": "Deployment", "metadata": {"uid": "d", "generation": 2}, "status": {"replicas": 1}}
    assert signatures.wakes_parent(None, deployment)  # kopf's initial listing counts as a change
    assert not signatures.wakes_parent("MODIFIED", copy.deepcopy(deployment))
    assert signatures.wakes_parent("DELETED", deployment)


def test_a_spec_change_or_the_start_of_a_deletion_wakes_the_parent() -> None:
    signatures = ChildSignatures()
    deployment = {"kind": "Deployment", "metadata": {"uid": "d", "generation": 2}, "status": {"replicas": 1}}
    assert signatures.wakes_parent("ADDED", deployment)
    newer = copy.deepcopy(deployment)
    newer["metadata"]["generation"] = 3
    assert signatures.wakes_parent("MODIFIED", newer)
    going = copy.deepcopy(newer)
    going["metadata"]["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    assert signatures.wakes_parent("MODIFIED", going)


def test_the_controller_triggers_the_parent_only_for_events_that_matter() -> None:
    class Queue:
        def __init__(self) -> None:
            self.triggered: list[tuple[Key, Lane]] = []

        def trigger(self, key: Key, lane: Lane = Lane.HIGH) -> None:
            self.triggered.append((key, lane))

    async def scenario() -> list[tuple[Key, Lane]]:
        controller = Controller(ReconcileContext(settings=SETTINGS, kube=FakeKube(), metrics=Metrics()))
        queue = Queue()
        controller.queue = queue  # type: ignore[assignment]
        labels = {contracts.LABEL_MANAGED_BY: contracts.MANAGED_BY, contracts.LABEL_MODEL: "m"}
        complete = job(done="Complete")
        for event_type, body in [("ADDED", job()), ("MODIFIED", complete), ("MODIFIED", touched(complete))]:
            controller.child_changed("ns", labels, event_type, body)
        controller.child_changed("ns", labels, "DELETED", complete)
        return queue.triggered

    model = Key("Model", "ns", "m")
    assert asyncio.run(scenario()) == [(model, Lane.HIGH), (model, Lane.HIGH)]
