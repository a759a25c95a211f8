"""kstatus conditions (Reconciling, Stalled) beside Ready, judged the way kstatus judges them.

`kstatus` below is the generic rule of sigs.k8s.io/cli-utils/pkg/kstatus/status (what `flux --wait`
and kpt use for custom resources): a stale observedGeneration or Reconciling=True is InProgress,
Stalled=True is Failed, anything else is Current.
"""

from __future__ import annotations

from datetime import timedelta

from mlops_operator import conditions as cond
from mlops_operator.api.base import Condition
from mlops_operator.api.v1alpha1.dataset import DatasetStatus
from mlops_operator.api.v1alpha1.model import ActiveTraining, ModelStatus, ModelVersion, VersionState
from mlops_operator.reconcilers import dataset
from mlops_operator.reconcilers.model import status as summary
from tests.unit import factories as f
from tests.unit.factories import NOW

DATASET_OK = cond.State(cond.TRUE, "DatasetResolved", "")
NOT_APPROVED = cond.State(cond.UNKNOWN, "NoValidatedVersion", "")
NOT_SERVING = cond.State(cond.FALSE, "NothingToServe", "no version has passed validation yet")
APPROVED = cond.State(cond.TRUE, "Approved", "")
SERVING = cond.State(cond.TRUE, "Serving", "version 1 serving")


def kstatus(conditions: list[Condition], generation: int, observed: int | None) -> str:
    if observed is not None and observed != generation:
        return "InProgress"
    for c in conditions:
        if c.type == "Reconciling" and c.status == cond.TRUE:
            return "InProgress"
        if c.type == "Stalled" and c.status == cond.TRUE:
            return "Failed"
    return "Current"


def types(conditions: list[Condition]) -> set[str]:
    return {c.type for c in conditions}


def with_ready(state: cond.State, **kwargs: object) -> list[Condition]:
    ready = cond.set_state([], cond.Type.READY, state, now=NOW, generation=1)
    return cond.with_kstatus(ready, now=NOW, generation=1, **kwargs)  # type: ignore[arg-type]


def test_ready_is_current_with_neither_condition() -> None:
    conditions = with_ready(cond.State(cond.TRUE, "Ready", ""))
    assert types(conditions) == {"Ready"}
    assert kstatus(conditions, 1, 1) == "Current"


def test_a_permanent_reason_is_stalled_and_carries_readys_reason() -> None:
    conditions = with_ready(cond.State(cond.FALSE, cond.Reason.INVALID_SPEC, "spec.trainer: bad"))
    stalled = cond.get(conditions, "Stalled")
    assert stalled is not None and (stalled.status, stalled.reason, stalled.message) == (
        cond.TRUE,
        "InvalidSpec",
        "spec.trainer: bad",
    )
    assert cond.get(conditions, "Reconciling") is None
    assert kstatus(conditions, 1, 1) == "Failed"


def test_on_its_way_is_reconciling_and_a_wait_for_a_human_is_neither() -> None:
    assert kstatus(with_ready(cond.State(cond.UNKNOWN, cond.Reason.INITIALIZING, "")), 1, 1) == "InProgress"
    assert kstatus(with_ready(cond.State(cond.FALSE, cond.Reason.DATASET_NOT_READY, "")), 1, 1) == "InProgress"
    waiting = with_ready(cond.State(cond.FALSE, cond.Reason.AWAITING_APPROVAL, "set spec.approvedVersion: 2"))
    assert types(waiting) == {"Ready"}  # nothing the operator can do: `kubectl wait` for Ready says the rest
    transient = with_ready(cond.State(cond.FALSE, cond.Reason.STORE_ERROR, "store unreachable"))
    assert "Stalled" not in types(transient)  # retried with backoff: not a failure for good


def test_failed_and_working_come_from_the_kind() -> None:
    failed = with_ready(cond.State(cond.FALSE, "EstimatorNotAllowed", "os.system"), failed=True)
    assert kstatus(failed, 1, 1) == "Failed"
    busy = with_ready(cond.State(cond.TRUE, "Ready", ""), working=cond.State(cond.TRUE, "JobRunning", "training v2"))
    assert kstatus(busy, 1, 1) == "InProgress"


def test_the_conditions_go_when_they_stop_holding_and_keep_their_transition_time() -> None:
    stalled = with_ready(cond.State(cond.FALSE, cond.Reason.INVALID_SPEC, "bad"))
    later = NOW + timedelta(minutes=5)
    again = cond.with_kstatus(stalled, now=later, generation=1)
    assert cond.get(again, "Stalled") == cond.get(stalled, "Stalled")  # re-asserted: same transition time
    fixed = cond.set_state(again, cond.Type.READY, cond.State(cond.TRUE, "Ready", ""), now=later, generation=2)
    assert types(cond.with_kstatus(fixed, now=later, generation=2)) == {"Ready"}


def test_the_reason_sets_do_not_overlap() -> None:
    assert not cond.IN_PROGRESS & cond.PERMANENT


ACTIVE = ActiveTraining(job="m-train-1", version=1, trigger="initial", dataset_version="abc", started_at=NOW)


def summarize_model(work: ModelStatus, **kwargs: cond.State | None) -> str:
    states = {"approval": NOT_APPROVED, "serving_": NOT_SERVING, **kwargs}
    summary.summarize(work, f.model(), dataset=DATASET_OK, now=NOW, **states)  # type: ignore[arg-type]
    return kstatus(work.conditions, 1, work.observed_generation)


def test_a_model_reconciles_while_it_trains_and_rolls_out_then_is_current() -> None:
    training = ModelVersion(version=1, state=VersionState.TRAINING, job="m-train-1")
    work = ModelStatus(versions=[training], active_training=ACTIVE)
    assert summarize_model(work) == "InProgress"
    reconciling = cond.get(work.conditions, "Reconciling")
    assert reconciling is not None and reconciling.reason == "JobRunning" and "m-train-1" in reconciling.message

    work = ModelStatus(versions=[ModelVersion(version=1, state=VersionState.APPROVED)])
    rolling = cond.State(cond.UNKNOWN, cond.Reason.ROLLING_OUT, "version 1: 0 of 1 ready")
    assert summarize_model(work, approval=APPROVED, serving_=rolling) == "InProgress"

    work = ModelStatus(serving_version=1, versions=[ModelVersion(version=1, state=VersionState.SERVING)])
    assert summarize_model(work, approval=APPROVED, serving_=SERVING) == "Current"
    assert not {"Reconciling", "Stalled"} & types(work.conditions)


def test_a_model_whose_only_training_failed_is_stalled_whatever_the_workloads_reason() -> None:
    failed = ModelVersion(version=1, state=VersionState.FAILED, reason="EstimatorNotAllowed", message="os.system")
    work = ModelStatus(versions=[failed])
    assert summarize_model(work) == "Failed"
    stalled = cond.get(work.conditions, "Stalled")
    assert stalled is not None and stalled.reason == "EstimatorNotAllowed"


def test_a_serving_model_whose_new_training_failed_is_current() -> None:
    serving = ModelVersion(version=1, state=VersionState.SERVING)
    failed = ModelVersion(version=2, state=VersionState.FAILED, reason="OOMKilled", message="")
    work = ModelStatus(serving_version=1, versions=[serving, failed])
    assert summarize_model(work, approval=APPROVED, serving_=SERVING) == "Current"


def test_a_dataset_reconciles_while_profiling_and_stalls_on_bad_data() -> None:
    status = DatasetStatus()
    dataset.start_profiling(status, "iris-profile-1", 1, NOW)
    dataset.summarize(status, 1, NOW)
    assert kstatus(status.conditions, 1, status.observed_generation) == "InProgress"
    status.conditions = cond.set_condition(
        status.conditions, cond.Type.PROFILED, cond.FALSE, cond.Reason.DATA_ERROR, "no rows", now=NOW, generation=1
    )
    dataset.summarize(status, 1, NOW)
    assert kstatus(status.conditions, 1, status.observed_generation) == "Failed"
    assert kstatus(status.conditions, 2, status.observed_generation) == "InProgress"  # a new spec: not judged yet


def test_why_says_what_reconciling_and_stalled_mean() -> None:
    from mlops_operator.api.v1alpha1 import Model
    from mlops_operator.plugin import explain

    model = Model.model_validate(f.model("m").dump())
    model.status = ModelStatus(versions=[ModelVersion(version=1, state=VersionState.FAILED, reason="OOMKilled")])
    summary.summarize(model.status, model, dataset=DATASET_OK, approval=NOT_APPROVED, serving_=NOT_SERVING, now=NOW)
    stalled = next(e for e in explain.explain(model, NOW) if e.condition == "Stalled")
    assert stalled.sentence.startswith("Model m is stuck until its spec or its data changes (OOMKilled)")
    assert stalled.hint  # the same next step as Ready's


def test_a_refused_spec_is_stalled_whatever_the_refusals_reason() -> None:
    import asyncio

    from mlops_operator.kube import MODEL
    from mlops_operator.metrics import Metrics
    from mlops_operator.reconcilers.context import ReconcileContext, record_invalid_spec
    from tests.unit.factories import SETTINGS
    from tests.unit.reconcilers.fake_kube import FakeKube

    kube = FakeKube()
    body = kube.put(MODEL.path("team-a"), f.model("m").dump())
    ctx = ReconcileContext(settings=SETTINGS, kube=kube, metrics=Metrics())
    fields = (cond.Type.TRAINED, cond.Type.READY)
    asyncio.run(record_invalid_spec(ctx, MODEL, body, "no", NOW, ModelStatus, fields, lambda _: None, "BrandNew"))
    (patch,) = [b for m, p, b in kube.calls if m == "PATCH" and p.endswith("/status")]
    stalled = next(c for c in patch["status"]["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "BrandNew")
