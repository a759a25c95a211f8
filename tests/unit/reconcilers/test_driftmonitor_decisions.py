from __future__ import annotations

from datetime import timedelta
from typing import Literal

from mlops_operator import conditions as cond
from mlops_operator.api.results import DriftFeatureResult, DriftResult
from mlops_operator.api.v1alpha1.driftmonitor import DriftMonitorStatus, DriftTest
from mlops_operator.reconcilers import driftmonitor as dm
from mlops_operator.reconcilers import observe
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
