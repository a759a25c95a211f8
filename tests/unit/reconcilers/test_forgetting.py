"""Deleted objects leave nothing behind: no per-key queue state, no metric series."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import generate_latest

from mlops_operator.metrics import Metrics
from mlops_operator.reconcilers.context import Key, ReconcileContext, ReconcileResult
from mlops_operator.reconcilers.controller import Controller
from mlops_operator.reconcilers.queue import WorkQueue
from tests.unit.factories import SETTINGS

MODEL = Key("Model", "ns", "m")
MONITOR = Key("DriftMonitor", "ns", "mon")


def series(metrics: Metrics) -> list[str]:
    """The per-object series (not the operator's own reconcile counters)."""
    text = generate_latest(metrics.registry).decode()
    lines = text.splitlines()
    return sorted(s for s in lines if s.startswith(("mlops_model_", "mlops_drift_", "mlops_retrain_")) and "{" in s)


def exported(metrics: Metrics) -> None:
    """What a Model "m" and a DriftMonitor "mon" watching it export, plus another Model's version."""
    metrics.serving_version.labels("ns", "m").set(3)
    metrics.serving_version.labels("ns", "other").set(1)
    metrics.training_failures.labels("ns", "m").inc()
    metrics.record_drift("ns", "mon", "m", [("petal_width", "ks", 0.01, True)], 0.5, "Drift")
    metrics.retrain_requests.labels("ns", "mon", "m").inc()


def test_metrics_forget_removes_only_the_deleted_objects_series() -> None:
    metrics = Metrics()
    exported(metrics)
    assert metrics.forget("Model", "ns", "m") == 2
    left = series(metrics)
    assert not any('model="m",namespace="ns"}' in s for s in left)  # serving version, training failures
    assert any(s.startswith('mlops_model_serving_version{model="other"') for s in left)
    assert any(s.startswith("mlops_drift_share{") for s in left)  # the monitor's own series stay
    assert metrics.forget("DriftMonitor", "ns", "mon") == 5
    assert [s.split("{")[0] for s in series(metrics)] == ["mlops_model_serving_version"]
    assert metrics.forget("Dataset", "ns", "iris") == 0


def test_the_queue_holds_a_key_only_while_it_has_something_to_do() -> None:
    async def scenario() -> list[int]:
        seen: list[int] = []

        async def reconcile(key: Key) -> ReconcileResult:
            return ReconcileResult(requeue_after=3600) if key.name == "scheduled" else ReconcileResult()

        queue = WorkQueue(reconcile)
        await asyncio.gather(*(queue.reconcile(Key("Model", "ns", f"m{i}")) for i in range(50)))
        seen.append(len(queue))  # every run done, nothing scheduled: nothing held
        await queue.reconcile(Key("Model", "ns", "scheduled"))
        seen.append(len(queue))  # a wake-up in an hour is something to do
        queue.forget(Key("Model", "ns", "scheduled"))
        seen.append(len(queue))
        await queue.close()
        return seen

    assert asyncio.run(scenario()) == [0, 1, 0]


def test_a_failing_key_is_held_for_its_backoff_until_forgotten() -> None:
    async def scenario() -> tuple[int, int, int]:
        async def reconcile(key: Key) -> ReconcileResult:
            raise RuntimeError("api down")

        queue = WorkQueue(reconcile)
        await queue.reconcile(MODEL)
        held = len(queue)
        queue.forget(MODEL)
        after = len(queue)
        await asyncio.sleep(1.2)  # the cancelled backoff never fires
        later = len(queue)
        await queue.close()
        return held, after, later

    assert asyncio.run(scenario()) == (1, 0, 0)


def test_forget_during_a_run_drops_the_key_when_the_run_ends_and_runs_never_overlap() -> None:
    async def scenario() -> tuple[int, int, int]:
        gate = asyncio.Event()
        running = peak = 0

        async def reconcile(key: Key) -> ReconcileResult:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await gate.wait()
            running -= 1
            return ReconcileResult(requeue_after=60)

        queue = WorkQueue(reconcile)
        first = asyncio.create_task(queue.reconcile(MODEL))
        await asyncio.sleep(0)
        queue.forget(MODEL)  # the DELETED event arrives while the run is in flight
        queued = asyncio.create_task(queue.reconcile(MODEL))  # …and one more trigger
        await asyncio.sleep(0)
        during = len(queue)
        gate.set()
        await asyncio.gather(first, queued)
        queue.forget(MODEL)
        after = len(queue)
        await queue.close()
        return peak, during, after

    assert asyncio.run(scenario()) == (1, 1, 0)


class GoneKube:
    """Every object has been deleted."""

    def __init__(self) -> None:
        self.gets: list[tuple[str, str, str]] = []

    async def get(self, kind: Any, namespace: str, name: str) -> None:
        self.gets.append((kind.kind, namespace, name))

    def close(self) -> None:
        pass


def test_a_deleted_object_is_forgotten_by_the_controller_queue_and_metrics() -> None:
    async def scenario() -> tuple[list[str], int, list[tuple[str, str, str]]]:
        kube = GoneKube()
        metrics = Metrics()
        controller = Controller(ReconcileContext(settings=SETTINGS, kube=kube, metrics=metrics))  # type: ignore[arg-type]
        exported(metrics)
        controller.queue.requeue(MONITOR, 3600)  # the next drift tick
        controller.deleted(MODEL)
        controller.deleted(MONITOR)
        for _ in range(100):  # the last reconciles run in the background
            await asyncio.sleep(0.01)
            if len(kube.gets) == 2 and not len(controller.queue):
                break
        left = series(metrics)
        held = len(controller.queue)
        await controller.stop()
        return left, held, kube.gets

    left, held, gets = asyncio.run(scenario())
    assert [s.split("{")[0] for s in left] == ["mlops_model_serving_version"] and 'model="other"' in left[0]
    assert held == 0
    assert sorted(gets) == [("DriftMonitor", "ns", "mon"), ("Model", "ns", "m")]  # one last look each


def test_a_reconcile_that_finds_its_object_gone_removes_its_series() -> None:
    """Also when the DELETED event was missed (the watch was down): the next resync or child event."""

    async def scenario() -> list[str]:
        metrics = Metrics()
        exported(metrics)
        controller = Controller(ReconcileContext(settings=SETTINGS, kube=GoneKube(), metrics=metrics))  # type: ignore[arg-type]
        await controller.reconcile(MODEL)
        await controller.stop()
        return series(metrics)

    left = asyncio.run(scenario())
    assert not any('model="m",namespace="ns"}' in s for s in left), left
    assert any(s.startswith("mlops_drift_share{") for s in left)  # the monitor was not deleted


def test_a_model_that_stops_serving_loses_its_serving_version_series() -> None:
    from mlops_operator.api.v1alpha1.model import ModelStatus
    from mlops_operator.reconcilers.model import reconciler
    from mlops_operator.reconcilers.skeleton import Run
    from tests.unit import factories as f
    from tests.unit.reconcilers.fake_kube import FakeKube

    metrics = Metrics()
    ctx = ReconcileContext(settings=SETTINGS, kube=FakeKube(), metrics=metrics)
    model = f.model("m")
    run = Run(ctx, Key("Model", "team-a", "m"), model.dump(), model, ModelStatus(serving_version=2), f.NOW)
    asyncio.run(reconciler._export_series(run, "Approved"))
    assert metrics.registry.get_sample_value("mlops_model_serving_version", {"namespace": "team-a", "model": "m"}) == 2
    run.work.serving_version = None  # serving disabled
    asyncio.run(reconciler._export_series(run, "Approved"))
    asyncio.run(reconciler._export_series(run, "Approved"))  # nothing to remove: no error
    assert (
        metrics.registry.get_sample_value("mlops_model_serving_version", {"namespace": "team-a", "model": "m"}) is None
    )
