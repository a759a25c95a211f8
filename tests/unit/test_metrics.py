"""The operator's own series: build info, the work queue's depth read at scrape time, and the
Model series a reconcile exports (approval waiting, failure counters from 0)."""

from __future__ import annotations

import asyncio
import platform
from datetime import timedelta

from mlops_operator import __version__
from mlops_operator.api.v1alpha1.model import ModelStatus, ModelVersion, VersionState
from mlops_operator.metrics import Metrics
from mlops_operator.reconcilers.context import Key, ReconcileContext, ReconcileResult
from mlops_operator.reconcilers.controller import Controller
from mlops_operator.reconcilers.model import reconciler
from mlops_operator.reconcilers.queue import Lane
from mlops_operator.reconcilers.skeleton import Run
from tests.unit import factories as f
from tests.unit.factories import SETTINGS
from tests.unit.reconcilers.fake_kube import FakeKube

MODEL = {"namespace": "team-a", "model": "m"}


def test_build_info_names_the_version() -> None:
    metrics = Metrics()
    labels = {"version": __version__, "python_version": platform.python_version()}
    assert metrics.registry.get_sample_value("mlops_operator_build_info", labels) == 1


def test_queue_depth_is_read_from_the_controllers_queue_per_lane() -> None:
    metrics = Metrics()
    assert metrics.registry.get_sample_value("mlops_workqueue_depth", {"lane": "low"}) is None  # no queue yet

    async def scenario() -> dict[str, float | None]:
        controller = Controller(ReconcileContext(settings=SETTINGS, kube=FakeKube(), metrics=metrics))
        gate = asyncio.Event()

        async def blocked(key: Key) -> ReconcileResult:
            await gate.wait()
            return ReconcileResult()

        controller.queue._reconcile = blocked  # type: ignore[method-assign]
        for i in range(40):
            controller.queue.trigger(Key("Model", "ns", f"m{i}"), Lane.LOW)
        await asyncio.sleep(0.05)  # the workers take the first keys; the rest wait
        depth = {lane: metrics.registry.get_sample_value("mlops_workqueue_depth", {"lane": lane}) for lane in LANES}
        gate.set()
        await controller.queue.close()
        return depth

    depth = asyncio.run(scenario())
    assert depth["high"] == 0 and depth["normal"] == 0
    assert depth["low"] is not None and 30 <= depth["low"] < 40


LANES = ("high", "normal", "low")


def test_a_model_exports_since_when_a_version_waits_and_its_failure_counters_from_zero() -> None:
    metrics = Metrics()
    ctx = ReconcileContext(settings=SETTINGS, kube=FakeKube(), metrics=metrics)
    model = f.model("m")
    validated = ModelVersion(version=2, state=VersionState.VALIDATED, trained_at=f.NOW - timedelta(hours=30))
    work = ModelStatus(serving_version=1, versions=[ModelVersion(version=1, state=VersionState.SERVING), validated])
    run = Run(ctx, Key("Model", "team-a", "m"), model.dump(), model, work, f.NOW)
    asyncio.run(reconciler._export_series(run, "AwaitingApproval"))
    since = metrics.registry.get_sample_value("mlops_model_awaiting_approval_since_timestamp_seconds", MODEL)
    assert since == (f.NOW - timedelta(hours=30)).timestamp()
    assert metrics.registry.get_sample_value("mlops_model_training_failures_total", MODEL) == 0
    assert metrics.registry.get_sample_value("mlops_model_rollout_failures_total", MODEL) == 0
    asyncio.run(reconciler._export_series(run, "Approved"))  # approved: nothing waits any more
    assert metrics.registry.get_sample_value("mlops_model_awaiting_approval_since_timestamp_seconds", MODEL) is None
    assert metrics.forget("Model", "team-a", "m") == 3  # serving version and both counters
