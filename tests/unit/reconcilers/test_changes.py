"""The controller reads the custom resources' own watch events (no kopf change handlers, so kopf
writes nothing onto them): which events start a run, in which lane, and the watch cache fed on the way."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from mlops_operator import contracts
from mlops_operator.kube import MODEL
from mlops_operator.metrics import Metrics
from mlops_operator.reconcilers.context import Key, ReconcileContext
from mlops_operator.reconcilers.controller import Controller
from mlops_operator.reconcilers.queue import Lane
from tests.unit.factories import SETTINGS
from tests.unit.reconcilers.fake_kube import FakeKube

KEY = Key("Model", "ns", "m")


class Queue:
    def __init__(self) -> None:
        self.triggered: list[tuple[Key, Lane]] = []

    def trigger(self, key: Key, lane: Lane = Lane.HIGH) -> None:
        self.triggered.append((key, lane))

    def forget(self, key: Key) -> None:
        pass


def body(version: int, generation: int = 1, **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": MODEL.api_version,
        "kind": "Model",
        "metadata": {
            "name": "m",
            "namespace": "ns",
            "uid": "u",
            "resourceVersion": str(version),
            "generation": generation,
            "annotations": annotations,
        },
        "spec": {"datasetRef": {"name": "d"}},
        "status": {"phase": "Pending"},
    }


def test_only_a_change_of_what_the_object_asks_for_starts_a_run() -> None:
    async def scenario() -> tuple[list[tuple[Key, Lane]], Controller]:
        controller = Controller(ReconcileContext(settings=SETTINGS, kube=FakeKube(), metrics=Metrics()))
        queue = Queue()
        controller.queue = queue  # type: ignore[assignment]
        status_only = body(2)
        status_only["status"] = {"phase": "Training"}
        kopf_only = body(3, **{f"{contracts.KOPF_PREFIX}/last-handled-configuration": "{}"})
        retrain = body(4, **{contracts.ANNOTATION_RETRAIN_REQUESTED: "2026-01-01T00:00:00Z;x"})
        events: list[tuple[str | None, dict[str, Any]]] = [
            (None, body(1)),  # listed at start: the restart's catch-up (NORMAL)
            (None, body(1)),  # listed again after a lost watch, unchanged: nothing
            ("MODIFIED", status_only),  # our own status patch coming back: nothing
            ("MODIFIED", kopf_only),  # kopf's bookkeeping of an older release: nothing
            ("MODIFIED", retrain),  # someone asks for a retrain: HIGH
            ("MODIFIED", body(5, generation=2, **retrain["metadata"]["annotations"])),  # a spec change: HIGH
        ]
        for event_type, obj in events:
            controller.resource_event(KEY, event_type, copy.deepcopy(obj))
        return queue.triggered, controller

    triggered, controller = asyncio.run(scenario())
    assert triggered == [(KEY, Lane.NORMAL), (KEY, Lane.HIGH), (KEY, Lane.HIGH)]
    cached = controller.ctx.kube.cache.get(MODEL, "ns", "m")
    assert cached is not None and cached["metadata"]["resourceVersion"] == "5"  # the cache follows every event
    assert controller.ctx.kube.cache.trusted  # an event handler ran: kopf had listed every indexed watch


def test_a_created_object_is_normal_and_a_deleted_one_is_forgotten() -> None:
    async def scenario() -> tuple[list[tuple[Key, Lane]], Controller]:
        controller = Controller(ReconcileContext(settings=SETTINGS, kube=FakeKube(), metrics=Metrics()))
        queue = Queue()
        controller.queue = queue  # type: ignore[assignment]
        controller.resource_event(KEY, "ADDED", body(1))
        controller.resource_event(KEY, "DELETED", body(2))
        return queue.triggered, controller

    triggered, controller = asyncio.run(scenario())
    assert triggered == [(KEY, Lane.NORMAL), (KEY, Lane.HIGH)]  # the last run finds it gone
    assert KEY not in controller.essences and controller.ctx.kube.cache.get(MODEL, "ns", "m") is None
