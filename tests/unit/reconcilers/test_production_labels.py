"""spec.retrain.productionLabels on the operator's side: a DriftMonitor's request on the champion's data
trains (labels only) instead of NoNewData, the plan names the window and the champion's start, and a
Job that found no new label is answered NoNewData without a version (docs/production-labels.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from mlops_operator import conditions as cond
from mlops_operator import contracts
from mlops_operator.api.results import TrainResult
from mlops_operator.api.v1alpha1.model import ModelStatus, VersionState
from mlops_operator.builders import jobs
from mlops_operator.reconcilers import observe
from mlops_operator.reconcilers.model import training, versions
from tests.unit import factories as f
from tests.unit.factories import NOW

from .test_no_new_data import ASKED, RETRAIN, serving_on

QUALITY = f"{ASKED};quality: accuracy 0.7 < 0.9 on 300 labelled predictions"
ON = {"productionLabels": {"enabled": True, "windowSeconds": 86400, "maxRows": 500}}


def _decide(
    annotation: str, dataset_version: str = "v1", status: ModelStatus | None = None, **retrain: Any
) -> training.TrainingDecision:
    model = f.model(annotations={RETRAIN: annotation}, retrain={**ON, **retrain})
    work = status or serving_on("v1")
    work.training_spec_hash = jobs.training_spec_hash(model)
    return training.decide_training(model, work, work.training_spec_hash, dataset_version, NOW)


def test_a_monitors_request_on_the_champions_data_trains_on_labels_only() -> None:
    decision = _decide(QUALITY)
    assert not decision.no_new_data and decision.labels_only and decision.retrain_request == QUALITY
    assert (
        decision.trigger == "retrain: quality: accuracy 0.7 < 0.9 on 300 labelled predictions (new production labels)"
    )


def test_new_data_and_a_persons_request_train_as_before_and_the_cooldown_still_holds() -> None:
    moved_on = _decide(QUALITY, "v2", serving_on("v1", trainedDatasetVersion="v2"))
    assert moved_on.trigger and not moved_on.labels_only
    manual = _decide(f"{ASKED};the labels were wrong")
    assert manual.trigger == "retrain: the labels were wrong" and not manual.labels_only
    recent = serving_on("v1", lastRetrainTime=(NOW - timedelta(seconds=10)).isoformat())
    deferred = _decide(QUALITY, status=recent, cooldownSeconds=600)
    assert deferred.trigger is None and deferred.deferred_for is not None and not deferred.no_new_data


def test_the_plan_names_the_window_ending_now_and_labels_new_since_the_champion_started() -> None:
    off = f.model()
    assert jobs.production_rows_plan(off, f.SETTINGS, now=NOW, new_since=None, require_new=False) is None
    model = f.model(retrain=ON)
    since = NOW - timedelta(days=1)
    plan = jobs.production_rows_plan(model, f.SETTINGS, now=NOW, new_since=since, require_new=True)
    assert plan is not None
    assert (plan.window_start, plan.window_end, plan.max_rows) == (NOW - timedelta(days=1), NOW, 500)
    assert plan.collected_prefix == contracts.collected_prefix(f.SETTINGS.store_uri, model.namespace, model.name)
    assert plan.labels_prefix == contracts.labels_prefix(f.SETTINGS.store_uri, model.namespace, model.name)
    assert (plan.new_since, plan.require_new) == (since, True)
    rendered = f.training_plan(model).model_copy(update={"production": plan})
    job = f.training_job(model, rendered)
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert '"requireNew":true' in args[-1] and '"labelsPrefix"' in args[-1]


def _probe(work: ModelStatus) -> Any:
    return versions.start(
        work.versions,
        version=4,
        job="iris-clf-train-x",
        trigger="retrain: quality (new production labels)",
        dataset_version="v1",
        estimator=None,
        params={},
        now=NOW,
    )


def test_a_labels_only_job_that_found_none_leaves_no_version_and_says_no_new_data() -> None:
    model = f.model(annotations={RETRAIN: QUALITY}, retrain=ON)
    work = serving_on("v1", handledRetrainRequest=QUALITY, latestVersion=4)
    record = _probe(work)
    message = "the Dataset has no new version and no labelled production row arrived since 2026-01-01T00:00:00+00:00"
    outcome = observe.JobOutcome[TrainResult](
        observe.JobPhase.FAILED, "NoNewData", message, TrainResult(ok=False, reason="NoNewData", error=message)
    )
    events = training.finish_training(work, model, record, outcome, 3, NOW)
    assert [v.version for v in work.versions] == [3] and work.latest_version == 4  # v4 is not reused
    assert [(e.type, e.reason) for e in events] == [("Warning", "NoNewData")] and message in events[0].message
    state = training.no_new_data_state(model, work, "v1", fresh=True)
    assert state is not None and (state.status, state.reason) == (cond.TRUE, cond.Reason.NO_NEW_DATA)
    assert "no labelled production row arrived since" in state.message


def test_any_other_failure_of_a_labels_only_job_is_a_failed_version() -> None:
    model = f.model(annotations={RETRAIN: QUALITY}, retrain=ON)
    work = serving_on("v1", handledRetrainRequest=QUALITY, latestVersion=4)
    record = _probe(work)
    outcome = observe.JobOutcome[TrainResult](observe.JobPhase.FAILED, "OOMKilled", "out of memory")
    training.finish_training(work, model, record, outcome, 3, NOW)
    assert versions.find(work.versions, 4) is not None and record.state == VersionState.FAILED
