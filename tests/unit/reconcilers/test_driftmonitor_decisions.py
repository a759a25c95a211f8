from __future__ import annotations

from datetime import timedelta
from typing import Literal

import pytest

from mlops_operator import conditions as cond
from mlops_operator import contracts
from mlops_operator.api.results import DriftFeatureResult, DriftResult, LiveQualityResult, PredictionDriftResult
from mlops_operator.api.v1alpha1.dataset import Dataset, DatasetStatus
from mlops_operator.api.v1alpha1.driftmonitor import Baseline, DriftMonitorStatus, DriftTest
from mlops_operator.builders import jobs
from mlops_operator.reconcilers import driftmonitor as dm
from mlops_operator.reconcilers import observe
from mlops_operator.reconcilers.driftmonitor import baseline, reconciler, refresh, triggers
from tests.unit import factories as f
from tests.unit.factories import NOW

Verdict = Literal["Drift", "NoDrift", "NotEnoughData", "SchemaMismatch", "Failed"]


def result(verdict: Verdict, drifted: list[str] | None = None) -> observe.JobOutcome[DriftResult]:
    scores = [
        DriftFeatureResult(name=n, test=DriftTest.KS, score=0.001, threshold=0.05, drifted=True) for n in drifted or []
    ]
    r = DriftResult(
        ok=True,
        verdict=verdict,
        samples=500,
        drifted_share=0.5 if drifted else 0.0,
        drifted_features=drifted or [],
        scores=scores,
        report_uri="file:///r.html",
    )
    return observe.JobOutcome(observe.JobPhase.SUCCEEDED, result=r)


def test_breaches_count_up_on_drift_and_reset_on_no_drift_only() -> None:
    monitor, work = f.monitor(action={"consecutiveBreaches": 2}), DriftMonitorStatus()
    dm.record_check(work, monitor, "j1", NOW, result("Drift", ["a"]), NOW)
    assert work.consecutive_breaches == 1 and dm.should_retrain(work, monitor, NOW)[0] is False
    dm.record_check(work, monitor, "j2", NOW, result("NotEnoughData"), NOW)
    assert work.consecutive_breaches == 1  # no verdict: neither a breach nor a reset
    dm.record_check(work, monitor, "j3", NOW, result("Drift", ["a"]), NOW)
    assert work.consecutive_breaches == 2 and dm.should_retrain(work, monitor, NOW) == (True, "")
    dm.record_check(work, monitor, "j4", NOW, result("NoDrift"), NOW)
    assert work.consecutive_breaches == 0


def test_cooldown_blocks_a_second_request() -> None:
    monitor = f.monitor(action={"cooldownSeconds": 900})
    work = DriftMonitorStatus(last_retrain_request=NOW - timedelta(seconds=100))
    dm.record_check(work, monitor, "j", NOW, result("Drift", ["a"]), NOW)
    wanted, why = dm.should_retrain(work, monitor, NOW)
    assert not wanted and "cooldown" in why
    assert dm.should_retrain(work, monitor, NOW + timedelta(seconds=801))[0]


def test_history_is_bounded_and_status_carries_scores_and_report() -> None:
    monitor, work = f.monitor(historyLimit=3), DriftMonitorStatus()
    for i in range(5):
        dm.record_check(work, monitor, f"j{i}", NOW + timedelta(minutes=i), result("Drift", ["petal_width"]), NOW)
    assert [h.job for h in work.history] == ["j2", "j3", "j4"]
    assert work.report_uri == "file:///r.html" and work.feature_scores[0].name == "petal_width"
    dm.summarize(work, monitor, (cond.TRUE, "Ready", ""), NOW)
    detected = cond.get(work.conditions, "DriftDetected")
    assert detected is not None and detected.status == cond.TRUE


def test_a_failed_check_is_recorded_as_failed_not_as_drift() -> None:
    monitor, work = f.monitor(), DriftMonitorStatus()
    failed: observe.JobOutcome[DriftResult] = observe.JobOutcome(observe.JobPhase.FAILED, "OOMKilled", "out of memory")
    events = dm.record_check(work, monitor, "j", NOW, failed, NOW)
    assert (
        work.last_verdict == "Failed"
        and events[0].reason == "OOMKilled"
        and not dm.should_retrain(work, monitor, NOW)[0]
    )


def test_retrain_annotation_is_deterministic_per_tick() -> None:
    assert dm.retrain_annotation(NOW, ["a", "b"]) == "2026-01-02T03:04:05Z;drift: a, b"
    assert dm.retrain_annotation(NOW, ["a", "b"]) == dm.retrain_annotation(NOW, ["a", "b"])


# --- triggers: input drift, prediction drift, quality decay -----------------------------------------


def checked(
    verdict: Verdict = "NoDrift",
    *,
    quality: LiveQualityResult | None = None,
    prediction: PredictionDriftResult | None = None,
) -> observe.JobOutcome[DriftResult]:
    outcome = result(verdict, ["a"] if verdict == "Drift" else None)
    assert outcome.result is not None
    outcome.result.quality, outcome.result.prediction_drift = quality, prediction
    return outcome


def live(value: float | None, labelled: int, metric: str = "accuracy") -> LiveQualityResult:
    return LiveQualityResult(metric=metric, value=value, labelled=labelled, predictions=labelled + 10)


PERFORMANCE = {"performance": {"threshold": 0.9, "minLabels": 50}}


def test_quality_decay_fires_with_enough_labels_only() -> None:
    monitor = f.monitor(triggers=PERFORMANCE)
    work = DriftMonitorStatus()
    dm.record_check(work, monitor, "j1", NOW, checked(quality=live(0.7, 49)), NOW)
    assert work.fired == [] and work.consecutive_breaches == 0  # too few labels: no verdict
    assert not dm.should_retrain(work, monitor, NOW)[0]
    events = dm.record_check(work, monitor, "j2", NOW, checked(quality=live(0.7, 50)), NOW)
    assert work.fired == ["performance"] and work.consecutive_breaches == 1
    assert dm.should_retrain(work, monitor, NOW) == (True, "")
    assert any(e.reason == "TriggerFired" and "accuracy 0.7 < 0.9 on 50" in e.message for e in events)
    assert work.live_quality is not None and work.live_quality.value == 0.7 and work.history[-1].quality == 0.7
    dm.record_check(work, monitor, "j3", NOW, checked(quality=live(0.95, 80)), NOW)
    assert work.fired == [] and work.consecutive_breaches == 0  # a verdict without a breach resets


def test_error_metrics_fire_above_the_threshold() -> None:
    monitor = f.monitor(triggers={"performance": {"metric": "rmse", "threshold": 2.0, "minLabels": 1}})
    assert triggers.evaluate(monitor, checked(quality=live(2.5, 10, "rmse")).result).fired == ["performance"]
    assert triggers.evaluate(monitor, checked(quality=live(1.5, 10, "rmse")).result).fired == []


def test_prediction_drift_fires_only_when_enabled_and_input_drift_can_be_turned_off() -> None:
    drifted = PredictionDriftResult(test=DriftTest.JENSEN_SHANNON, score=0.3, threshold=0.1, drifted=True, samples=900)
    off = f.monitor()
    assert triggers.evaluate(off, checked(prediction=drifted).result).fired == []
    on = f.monitor(triggers={"predictionDrift": {"enabled": True}, "inputDrift": False})
    firing = triggers.evaluate(on, checked("Drift", prediction=drifted).result)
    assert firing.fired == ["predictionDrift"]
    assert firing.reasons == ["prediction drift: jensenshannon 0.3 (threshold 0.1)"]
    unscored = PredictionDriftResult(test=DriftTest.JENSEN_SHANNON, threshold=0.1, drifted=False, note="few")
    assert triggers.evaluate(on, checked("Drift", prediction=unscored).result).verdict is False


def test_the_metric_defaults_to_the_models_validation_metric() -> None:
    model = f.model(task="regression", validation={"metric": "mae"})
    assert triggers.quality_metric(f.monitor(), model) == "mae"
    r2 = f.monitor(triggers={"performance": {"metric": "r2", "threshold": 0.5}})
    assert triggers.quality_metric(r2, model) == "r2"


def test_a_request_names_every_fired_trigger_and_is_an_automatic_reason() -> None:
    monitor = f.monitor(triggers=PERFORMANCE)
    firing = triggers.evaluate(monitor, checked("Drift", quality=live(0.5, 100)).result)
    value = triggers.request_value(NOW, firing.reasons)
    assert value.startswith("2026-01-02T03:04:05Z;drift: a; quality: accuracy 0.5 < 0.9")
    assert len(triggers.request_value(NOW, [f"drift: {'x' * 600}"])) == 256  # the Dataset reads 256
    assert contracts.automatic_retrain(value) and not contracts.automatic_retrain("2026-01-02T03:04:05Z;manual")


def test_a_pending_refresh_and_the_refresh_cooldown_hold_the_next_action() -> None:
    monitor = f.monitor(action={"cooldownSeconds": 600})
    work = DriftMonitorStatus(fired=["inputDrift"], consecutive_breaches=1)
    work.pending_refresh = refresh.pending_for("iris", "2026-01-02T03:04:05Z;drift: a", NOW, "v1", "drift: a")
    wanted, why = dm.should_retrain(work, monitor, NOW)
    assert not wanted and "waiting for Dataset iris" in why
    work.pending_refresh, work.last_refresh_request = None, NOW - timedelta(seconds=100)
    assert "cooldown" in dm.should_retrain(work, monitor, NOW)[1]
    assert dm.should_retrain(work, monitor, NOW + timedelta(seconds=501))[0]


# --- refresh, then retrain -----------------------------------------------------------------------------


def dataset_body(version: str = "v1", last: dict[str, object] | None = None) -> dict[str, object]:
    status: dict[str, object] = {"version": version}
    if last is not None:
        status["lastRefresh"] = last
    return {"metadata": {"name": "iris"}, "status": status}


PENDING = refresh.pending_for("iris", "2026-01-02T03:04:05Z;quality: accuracy 0.5 < 0.9", NOW, "v1", "x")


@pytest.mark.parametrize(
    ("last", "version", "state"),
    [
        (
            {
                "requestedAt": "2026-01-02T03:04:05Z",
                "finishedAt": "2026-01-02T03:06:00Z",
                "outcome": "NewVersion",
                "version": "v2",
            },
            "v2",
            refresh.State.NEW_DATA,
        ),
        (
            {"requestedAt": "2026-01-02T03:04:05Z;quality", "finishedAt": "x", "outcome": "Unchanged", "version": "v1"},
            "v1",
            refresh.State.NO_NEW_DATA,
        ),
        (
            {"requestedAt": "2026-01-02T03:04:05+00:00", "finishedAt": "x", "outcome": "Failed"},
            "v1",
            refresh.State.FAILED,
        ),
        # an answer to an older request, one still running, or none at all: wait
        (
            {"requestedAt": "2026-01-01T00:00:00Z", "finishedAt": "x", "outcome": "Unchanged"},
            "v1",
            refresh.State.PENDING,
        ),
        ({"requestedAt": "2026-01-02T03:04:05Z", "outcome": "Unchanged"}, "v1", refresh.State.PENDING),
        (None, "v1", refresh.State.PENDING),
        ({"requestedAt": 7, "outcome": ["junk"]}, "v1", refresh.State.PENDING),  # tolerant of any shape
        (None, "v9", refresh.State.NEW_DATA),  # no lastRefresh (an older Dataset side), but a new version
        # new data since the request, though this request's answer is Unchanged (another refresh brought it)
        ({"request": PENDING.request, "finishedAt": "x", "outcome": "Unchanged", "version": "v1"}, "v2",
         refresh.State.NEW_DATA),
        # the Dataset side records the request as given (a time it could not read is left out)
        (
            {"request": PENDING.request, "finishedAt": "x", "outcome": "Unchanged", "version": "v1"},
            "v1",
            refresh.State.NO_NEW_DATA,
        ),
        # a later request (someone overwrote the annotation) answers ours too
        (
            {
                "request": "2026-01-02T03:05:00Z;by hand",
                "requestedAt": "2026-01-02T03:05:00Z",
                "finishedAt": "x",
                "outcome": "Unchanged",
            },
            "v1",
            refresh.State.NO_NEW_DATA,
        ),
    ],
)
def test_refresh_outcomes(last: dict[str, object] | None, version: str, state: refresh.State) -> None:
    found = refresh.outcome(PENDING, dataset_body(version, last), NOW + timedelta(seconds=60), 3600)
    assert found.state == state


def test_a_refresh_without_an_answer_times_out_and_a_deleted_dataset_fails() -> None:
    assert refresh.outcome(PENDING, dataset_body(), NOW + timedelta(seconds=3600), 3600).state == "RefreshTimedOut"
    assert refresh.outcome(PENDING, None, NOW, 3600).state == refresh.State.FAILED


# --- the baseline: the serving version's dataset version ----------------------------------------------


def ready_dataset(versions: list[str], current: str) -> Dataset:
    d = f.dataset()
    d.status = DatasetStatus.model_validate(
        {
            "version": current,
            "profileUri": f"file:///p/{current}/profile.json",
            "versions": [
                {
                    "version": v,
                    "rows": 10,
                    "columns": 2,
                    "profileUri": f"file:///p/{v}/profile.json",
                    "dataUri": f"file:///p/{v}/data.parquet",
                    "createdAt": NOW.isoformat(),
                }
                for v in versions
            ],
        }
    )
    return d


def serving(version: int, dataset_version: str) -> dict[str, object]:
    record = {"version": version, "state": "Serving", "datasetVersion": dataset_version}
    return {"servingVersion": version, "versions": [record]}


def test_the_baseline_is_the_serving_versions_dataset_version() -> None:
    chosen = baseline.choose(f.monitor(), f.model(status=serving(3, "old")), ready_dataset(["old", "new"], "new"))
    assert chosen is not None and (chosen.version, chosen.serving_version, chosen.message) == ("old", 3, None)
    assert chosen.profile_uri == "file:///p/old/profile.json"


def test_the_baseline_falls_back_to_the_latest_with_a_note() -> None:
    pruned = baseline.choose(f.monitor(), f.model(status=serving(3, "gone")), ready_dataset(["new"], "new"))
    assert pruned is not None and pruned.version == "new" and "no longer in Dataset iris" in (pruned.message or "")
    nothing = baseline.choose(f.monitor(), f.model(), ready_dataset(["new"], "new"))
    assert nothing is not None and "serves no version yet" in (nothing.message or "")
    other = baseline.choose(f.monitor(datasetRef={"name": "other"}), f.model(), f.dataset("other"))
    assert other is None  # no ready version yet


# --- the plan the check Job gets -----------------------------------------------------------------------


def test_the_plan_carries_quality_prediction_drift_and_the_quality_history() -> None:
    monitor = f.monitor(windowSeconds=600, qualityWindowSeconds=86400, triggers=PERFORMANCE)
    model = f.model(target="species")
    work = DriftMonitorStatus()
    dm.record_check(work, monitor, "j1", NOW - timedelta(hours=1), checked(quality=live(0.8, 60)), NOW)
    dm.record_check(work, monitor, "j2", NOW - timedelta(minutes=5), checked(quality=live(None, 0)), NOW)
    chosen = Baseline(dataset="iris", version="v1", profile_uri="file:///p/v1/profile.json", message="fallback")
    plan = jobs.drift_plan(monitor, tick=NOW, profile_uri=chosen.profile_uri, settings=f.SETTINGS)
    full = reconciler.check_plan(plan, monitor, model, work, chosen, f.SETTINGS.store_uri)
    assert full.quality is not None and full.prediction_drift is not None
    assert full.quality.labels_prefix == "file:///var/lib/mlops/team-a/labels/iris-clf"
    assert full.quality.shadow_prefix == "file:///var/lib/mlops/team-a/shadow/iris-clf"
    assert full.quality.window_start == NOW - timedelta(days=1) and full.window_start == NOW - timedelta(minutes=10)
    assert [(p.value, p.labelled) for p in full.quality.history] == [(0.8, 60)]
    assert (full.quality.metric, full.quality.task) == ("accuracy", "classification")
    assert full.prediction_drift.target == "species"
    assert full.baseline_note == "fallback"
    assert len(full.model_dump_json()) < 20_000


def test_the_plan_carries_retention_never_shorter_than_the_windows() -> None:
    chosen = Baseline(dataset="iris", version="v1", profile_uri="file:///p/v1/profile.json", message=None)
    model = f.model(serving={"collection": {"retentionDays": 2}})
    monitor = f.monitor(windowSeconds=600, qualityWindowSeconds=5 * 86400 + 1, retention={"reports": 3})
    plan = jobs.drift_plan(monitor, tick=NOW, profile_uri=chosen.profile_uri, settings=f.SETTINGS)
    full = reconciler.check_plan(plan, monitor, model, DriftMonitorStatus(), chosen, f.SETTINGS.store_uri)
    assert full.retention is not None and full.quality is not None
    assert full.retention.partition_prefixes == [
        plan.collected_prefix,
        full.quality.labels_prefix,
        full.quality.shadow_prefix,
    ]
    assert full.retention.max_age_days == 6  # the quality window reaches back 5 days and a second
    assert full.retention.keep_runs == 20  # the status history (historyLimit 20) links to its reports
    assert plan.output_dir == f"{full.retention.runs_dir}/{plan.output_dir.rsplit('/', 1)[1]}"
    short = f.monitor(windowSeconds=600, historyLimit=5, retention={"reports": 50})
    plan = jobs.drift_plan(short, tick=NOW, profile_uri=chosen.profile_uri, settings=f.SETTINGS)
    full = reconciler.check_plan(plan, short, model, DriftMonitorStatus(), chosen, f.SETTINGS.store_uri)
    assert full.retention is not None and (full.retention.max_age_days, full.retention.keep_runs) == (2, 50)


def test_status_adds_up_what_retention_deleted() -> None:
    monitor, work = f.monitor(), DriftMonitorStatus()
    dm.record_check(work, monitor, "j1", NOW - timedelta(hours=2), checked(), NOW)
    assert work.pruned is None  # nothing deleted yet
    pruning = checked()
    assert pruning.result is not None
    pruning.result.pruned_objects, pruning.result.pruned_bytes = 3, 4096
    dm.record_check(work, monitor, "j2", NOW - timedelta(hours=1), pruning, NOW)
    dm.record_check(work, monitor, "j3", NOW - timedelta(minutes=30), checked(), NOW)
    dm.record_check(work, monitor, "j4", NOW, pruning, NOW)
    assert work.pruned is not None
    assert (work.pruned.objects, work.pruned.bytes, work.pruned.last_time) == (6, 8192, NOW)
