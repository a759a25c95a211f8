"""The resync queues only objects whose own version, or a dependency's, moved since their last run."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from mlops_operator.kube import DATASET, DRIFT_MONITOR, MODEL, Kind, reads
from mlops_operator.metrics import Metrics
from mlops_operator.reconcilers import controller as controller_module
from mlops_operator.reconcilers.context import Key, ReconcileContext, ReconcileResult
from mlops_operator.reconcilers.controller import Controller
from mlops_operator.reconcilers.queue import Lane
from tests.unit.factories import SETTINGS
from tests.unit.reconcilers.fake_kube import FakeKube

DATASET_KEY = Key("Dataset", "ns", "d")
MODEL_KEY = Key("Model", "ns", "m")
MONITOR_KEY = Key("DriftMonitor", "ns", "mon")
KINDS = {"Dataset": DATASET, "Model": MODEL, "DriftMonitor": DRIFT_MONITOR}


class Queue:
    def __init__(self) -> None:
        self.triggered: list[tuple[Key, Lane]] = []

    def trigger(self, key: Key, lane: Lane = Lane.HIGH) -> None:
        self.triggered.append((key, lane))


def reading(*deps: Key) -> Callable[[ReconcileContext, Key], Awaitable[ReconcileResult]]:
    """A reconciler that reads its own object, then its dependencies, and patches its own status."""

    async def reconcile(ctx: ReconcileContext, key: Key) -> ReconcileResult:
        await ctx.kube.get(KINDS[key.kind], key.namespace, key.name)
        await asyncio.gather(*(ctx.kube.get(KINDS[d.kind], d.namespace, d.name) for d in deps))
        await ctx.kube.patch_status(KINDS[key.kind], key.namespace, key.name, {"observed": True})
        return ReconcileResult()

    return reconcile


class Cluster:
    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube

    def add(self, key: Key, version: str) -> None:
        kind = KINDS[key.kind]
        body = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": {"name": key.name, "namespace": "ns"}}
        body["metadata"]["resourceVersion"] = version
        self.kube.put(kind.path("ns"), body)

    def bump(self, key: Key, version: str) -> None:
        """Someone changed the object and the operator missed the event."""
        self.kube.objects[KINDS[key.kind].path("ns", key.name)]["metadata"]["resourceVersion"] = version

    def remove(self, key: Key) -> None:
        del self.kube.objects[KINDS[key.kind].path("ns", key.name)]


@pytest.fixture
def setup(monkeypatch: pytest.MonkeyPatch) -> tuple[Controller, Cluster, Queue]:
    monkeypatch.setattr(
        controller_module,
        "RECONCILERS",
        {"Dataset": reading(), "Model": reading(DATASET_KEY), "DriftMonitor": reading(MODEL_KEY, DATASET_KEY)},
    )
    kube = FakeKube()
    settings = dataclasses.replace(SETTINGS, namespaces=("ns",))  # the fake lists one namespace at a time
    controller = Controller(ReconcileContext(settings=settings, kube=kube, metrics=Metrics()))
    queue = Queue()
    controller.queue = queue  # type: ignore[assignment]
    cluster = Cluster(kube)
    for key, version in ((DATASET_KEY, "10"), (MODEL_KEY, "20"), (MONITOR_KEY, "30")):
        cluster.add(key, version)
    return controller, cluster, queue


def resync_then_run(controller: Controller, queue: Queue) -> list[Key]:
    """One resync; the keys it queued (all LOW) run, as the queue would run them, then the readers
    those runs woke (HIGH), until nothing more is woken."""

    async def scenario() -> list[Key]:
        queue.triggered.clear()
        await controller.resync()
        assert {lane for _, lane in queue.triggered} <= {Lane.LOW}
        keys = [key for key, _ in queue.triggered]
        done = 0
        while done < len(queue.triggered):
            await controller._dispatch(queue.triggered[done][0])
            done += 1
        return keys

    return asyncio.run(scenario())


def woken_by(controller: Controller, queue: Queue, key: Key) -> list[tuple[Key, Lane]]:
    """The keys one run of `key` wakes."""
    queue.triggered.clear()
    asyncio.run(controller._dispatch(key))
    return list(queue.triggered)


def test_objects_that_never_ran_are_queued_then_unchanged_ones_are_not(setup: Any) -> None:
    controller, _, queue = setup
    assert sorted(resync_then_run(controller, queue)) == sorted([DATASET_KEY, MODEL_KEY, MONITOR_KEY])
    assert resync_then_run(controller, queue) == []  # its own status patch is not a change to catch up on
    assert controller.versions.get(MONITOR_KEY) == {  # each first run's status patch moved its version by one
        ("DriftMonitor", "ns", "mon"): "31",
        ("Model", "ns", "m"): "21",
        ("Dataset", "ns", "d"): "11",
    }


def test_a_missed_change_queues_the_object_and_everything_that_read_it(setup: Any) -> None:
    controller, cluster, queue = setup
    resync_then_run(controller, queue)
    cluster.bump(DATASET_KEY, "15")
    assert sorted(resync_then_run(controller, queue)) == sorted([DATASET_KEY, MODEL_KEY, MONITOR_KEY])
    cluster.bump(MONITOR_KEY, "35")
    assert resync_then_run(controller, queue) == [MONITOR_KEY]  # nothing else read the monitor
    assert resync_then_run(controller, queue) == []


def test_a_deleted_dependency_queues_its_dependents_and_is_forgotten(setup: Any) -> None:
    controller, cluster, queue = setup
    resync_then_run(controller, queue)
    cluster.remove(MODEL_KEY)
    assert resync_then_run(controller, queue) == [MONITOR_KEY]
    assert MODEL_KEY not in controller.versions


def test_a_failed_run_is_looked_at_again_at_the_next_resync(setup: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    controller, _, queue = setup
    resync_then_run(controller, queue)

    async def failing(ctx: ReconcileContext, key: Key) -> ReconcileResult:
        await ctx.kube.get(MODEL, key.namespace, key.name)
        raise RuntimeError("api down")

    monkeypatch.setitem(controller_module.RECONCILERS, "Model", failing)
    with pytest.raises(RuntimeError):
        asyncio.run(controller._dispatch(MODEL_KEY))
    assert MODEL_KEY not in controller.versions
    monkeypatch.setitem(controller_module.RECONCILERS, "Model", reading(DATASET_KEY))
    assert resync_then_run(controller, queue) == [MODEL_KEY]


def test_a_run_that_moves_its_objects_version_wakes_the_objects_that_read_an_older_one(setup: Any) -> None:
    controller, cluster, queue = setup
    resync_then_run(controller, queue)
    assert woken_by(controller, queue, MONITOR_KEY) == []  # nothing reads a DriftMonitor
    cluster.bump(DATASET_KEY, "12")  # the Dataset's new version (its own run patches its status)
    assert sorted(woken_by(controller, queue, DATASET_KEY)) == [(MONITOR_KEY, Lane.HIGH), (MODEL_KEY, Lane.HIGH)]
    assert woken_by(controller, queue, MODEL_KEY) == []
    assert woken_by(controller, queue, MONITOR_KEY) == []
    assert woken_by(controller, queue, DATASET_KEY) == []  # every reader has seen this version: no ping-pong
    cluster.bump(MODEL_KEY, "25")  # the Model's run patches its status
    assert woken_by(controller, queue, MODEL_KEY) == [(MONITOR_KEY, Lane.HIGH)]


def test_only_custom_resources_are_recorded() -> None:
    with reads.recording() as versions:
        reads.note(Kind("batch", "v1", "jobs", "Job"), "ns", "j", {"metadata": {"resourceVersion": "5"}})
        reads.note(MODEL, "ns", "absent", None)
    reads.note(MODEL, "ns", "outside", {"metadata": {"resourceVersion": "1"}})  # no run is recording
    assert versions == {("Model", "ns", "absent"): ""}
