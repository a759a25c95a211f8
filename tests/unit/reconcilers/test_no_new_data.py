"""A DriftMonitor's retrain request on the data the serving model was trained on becomes NoNewData on
the Model (handled, no Job); a person's request retrains on the same data."""

from __future__ import annotations

from datetime import timedelta

from mlops_operator import conditions as cond
from mlops_operator import contracts
from mlops_operator.api.v1alpha1.model import ModelStatus, ModelVersion, VersionState
from mlops_operator.builders import jobs
from mlops_operator.reconcilers.model import status as summary
from mlops_operator.reconcilers.model import training
from tests.unit import factories as f
from tests.unit.factories import NOW

RETRAIN = contracts.ANNOTATION_RETRAIN_REQUESTED
ASKED = "2026-01-02T03:00:00Z"


def serving_on(dataset_version: str, **kw: object) -> ModelStatus:
    record = ModelVersion(
        version=3, state=VersionState.SERVING, dataset_version=dataset_version, created_at=NOW - timedelta(days=1)
    )
    return ModelStatus.model_validate(
        {"servingVersion": 3, "trainedDatasetVersion": dataset_version, "versions": [record.dump()], **kw}
    )


def decide(reason: str, dataset_version: str, status: ModelStatus | None = None) -> training.TrainingDecision:
    model = f.model(annotations={RETRAIN: f"{ASKED};{reason}"})
    work = status or serving_on("v1")
    work.training_spec_hash = jobs.training_spec_hash(model)
    return training.decide_training(model, work, work.training_spec_hash, dataset_version, NOW)


def test_drift_and_quality_requests_on_the_champions_data_are_no_new_data() -> None:
    for reason in (
        "drift: petal_width",
        "quality: accuracy 0.7 < 0.9 on 300 labelled predictions",
        "prediction drift: jensenshannon 0.3 (threshold 0.1)",
    ):
        decision = decide(reason, "v1")
        assert decision.no_new_data and decision.trigger is None and decision.retrain_request == f"{ASKED};{reason}"


def test_a_persons_request_and_new_data_retrain() -> None:
    manual = decide("the labels were wrong, retrain", "v1")
    assert not manual.no_new_data and manual.trigger == "retrain: the labels were wrong, retrain"
    moved_on = decide("drift: petal_width", "v2", serving_on("v1", trainedDatasetVersion="v2"))
    assert not moved_on.no_new_data and moved_on.trigger == "retrain: drift: petal_width"
    failed_only = ModelStatus(trained_dataset_version="v1", versions=[ModelVersion(version=1, state="Failed")])
    nothing_serves = decide("drift: petal_width", "v1", failed_only)
    assert not nothing_serves.no_new_data


def test_no_new_data_is_trained_true_with_its_reason_until_data_or_a_training_changes_it() -> None:
    request = f"{ASKED};quality: accuracy 0.7 < 0.9"
    model = f.model(annotations={RETRAIN: request})
    work = serving_on("v1", handledRetrainRequest=request)
    assert training.no_new_data_state(model, work, "v1") is None  # not answered so (nothing recorded yet)
    state = training.no_new_data_state(model, work, "v1", fresh=True)
    assert state is not None and (state.status, state.reason) == (cond.TRUE, cond.Reason.NO_NEW_DATA)
    assert "still at version v1" in state.message
    work.conditions = cond.set_state(work.conditions, cond.Type.TRAINED, state, now=NOW, generation=1)
    assert summary.trained_state(work.versions[-1], state).reason == "NoNewData"
    assert training.no_new_data_state(model, work, "v1") == state  # it stays
    assert training.no_new_data_state(model, work, "v2") is None  # new data: the request is history
    running = cond.State(cond.UNKNOWN, cond.Reason.JOB_RUNNING, "training")
    work.conditions = cond.set_state(work.conditions, cond.Type.TRAINED, running, now=NOW, generation=1)
    assert training.no_new_data_state(model, work, "v1") is None  # a training since
    other = f.model(annotations={RETRAIN: f"{ASKED};manual"})
    manual = serving_on("v1", handledRetrainRequest=f"{ASKED};manual")
    assert training.no_new_data_state(other, manual, "v1", fresh=True) is None
