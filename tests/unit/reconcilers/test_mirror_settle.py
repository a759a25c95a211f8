"""The registry mirror waits for the ledger to settle: one mirror Job per retrain cycle, whatever the
timing of the Jobs, but never a wait for the first mirror (the read that rebuilds a recreated Model)
and never longer than SETTLE_SECONDS after the newest version began."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mlops_operator import conditions as cond
from mlops_operator.api.v1alpha1.model import ActiveTraining, ModelStatus, ModelVersion, RegistryMirror, VersionState
from mlops_operator.metrics import Metrics
from mlops_operator.reconcilers.context import Key, ReconcileContext
from mlops_operator.reconcilers.model.mirror import SETTLE_SECONDS, settle_seconds
from mlops_operator.reconcilers.skeleton import Run
from tests.unit import factories as f
from tests.unit.reconcilers.fake_kube import FakeKube

SERVING = cond.State(cond.TRUE, cond.Reason.SERVING, "version 1 serving")
ROLLING_OUT = cond.State(cond.UNKNOWN, cond.Reason.ROLLING_OUT, "rolling out version 2")
AWAITING = cond.State(cond.FALSE, cond.Reason.AWAITING_APPROVAL, "version 2 waits")


def run_with(work: ModelStatus, seconds_after_v2: float) -> Run:
    model = f.model()
    ctx = ReconcileContext(settings=f.SETTINGS, kube=FakeKube(), metrics=Metrics(), clock=lambda: f.NOW)
    now = f.NOW + timedelta(seconds=seconds_after_v2)
    return Run(ctx, Key("Model", "team-a", model.name), model.dump(), model, work, now)


def ledger(*, training: bool, mirrored: bool = True) -> ModelStatus:
    work = ModelStatus(
        versions=[
            ModelVersion(version=1, state=VersionState.SERVING, created_at=f.NOW - timedelta(days=3)),
            ModelVersion(
                version=2, state=VersionState.TRAINING if training else VersionState.APPROVED, created_at=f.NOW
            ),
        ]
    )
    work.serving_version = 1
    if training:
        work.active_training = ActiveTraining(
            job="m-train-v2", version=2, trigger="retrain", dataset_version="d1", started_at=f.NOW
        )
    if mirrored:
        work.registry = RegistryMirror(digest="d" * 16, job="m-registry-x", synced_at=f.NOW - timedelta(days=3))
    return work


@pytest.mark.parametrize("state", [SERVING, ROLLING_OUT])
def test_a_training_holds_the_mirror_back_until_it_ends(state: cond.State) -> None:
    assert settle_seconds(run_with(ledger(training=True), 30), state) == pytest.approx(SETTLE_SECONDS - 30)


def test_a_rollout_holds_the_mirror_back_and_a_settled_ledger_is_written_at_once() -> None:
    assert settle_seconds(run_with(ledger(training=False), 5), ROLLING_OUT) == pytest.approx(SETTLE_SECONDS - 5)
    assert settle_seconds(run_with(ledger(training=False), 5), SERVING) == 0.0
    assert settle_seconds(run_with(ledger(training=False), 5), AWAITING) == 0.0  # a person may take days


def test_a_long_training_or_a_stuck_rollout_is_mirrored_after_the_bound() -> None:
    assert settle_seconds(run_with(ledger(training=True), SETTLE_SECONDS + 1), SERVING) == 0.0
    assert settle_seconds(run_with(ledger(training=False), SETTLE_SECONDS), ROLLING_OUT) == 0.0


def test_the_first_mirror_never_waits() -> None:
    assert settle_seconds(run_with(ledger(training=True, mirrored=False), 1), ROLLING_OUT) == 0.0
