"""A finished check folded into status (verdict, scores, triggers, live quality, history), and the
conditions. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops_operator import conditions as cond
from mlops_operator import contracts
from mlops_operator.api.results import LIVE_QUALITY_FIELDS, PREDICTION_DRIFT_FIELDS, DriftResult
from mlops_operator.api.v1alpha1.driftmonitor import (
    Baseline,
    CheckRecord,
    DriftMonitor,
    DriftMonitorStatus,
    FeatureScore,
    LiveQuality,
    PredictionDriftScore,
    PrunedTotals,
)
from mlops_operator.reconcilers import observe
from mlops_operator.reconcilers.context import EventSpec, warning
from mlops_operator.reconcilers.driftmonitor import triggers

VERDICT_REASONS = {
    "Drift": cond.Reason.DRIFT,
    "NoDrift": cond.Reason.NO_DRIFT,
    "NotEnoughData": cond.Reason.NOT_ENOUGH_DATA,
    "SchemaMismatch": cond.Reason.SCHEMA_MISMATCH,
    "Failed": cond.Reason.CHECK_FAILED,
}


def tick_of(job: dict[str, Any]) -> datetime | None:
    raw = (job["metadata"].get("annotations") or {}).get(contracts.ANNOTATION_SCHEDULED_TICK)
    try:
        return datetime.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _verdict(outcome: observe.JobOutcome[DriftResult]) -> tuple[str, str, DriftResult]:
    result = outcome.result
    if outcome.phase == observe.JobPhase.SUCCEEDED and result is not None:
        return result.verdict, result.message or "", result
    failed = result if result is not None else DriftResult(ok=False, verdict="Failed", error=outcome.message)
    return "Failed", outcome.message, failed


def _record_quality(work: DriftMonitorStatus, result: DriftResult, tick: datetime) -> None:
    quality, prediction = result.quality, result.prediction_drift
    if quality is not None and (quality.labelled > 0 or work.live_quality is None):
        skipped = "; ".join(f"{k}: {v}" for k, v in sorted(quality.skipped.items()))
        work.live_quality = LiveQuality(
            **quality.model_dump(include=set(LIVE_QUALITY_FIELDS)),
            metrics={k[:32]: v for k, v in list(quality.metrics.items())[:16]},
            time=tick,
            message="; ".join(filter(None, [quality.note, skipped]))[:1024] or None,
        )
    if prediction is not None:
        work.prediction_drift = PredictionDriftScore(
            **prediction.model_dump(include=set(PREDICTION_DRIFT_FIELDS)),
            message=(prediction.note or "")[:1024] or None,
        )


def record_check(
    work: DriftMonitorStatus,
    monitor: DriftMonitor,
    job_name: str,
    tick: datetime,
    outcome: observe.JobOutcome[DriftResult],
    now: datetime,
    baseline: Baseline | None = None,
) -> list[EventSpec]:
    """Fold a finished check into status: verdict, scores, triggers, live quality, bounded history,
    breach count. Pure."""
    verdict, message, result = _verdict(outcome)
    work.last_verdict = verdict
    if verdict in ("Drift", "NoDrift"):
        work.drifted_share = result.drifted_share
        work.feature_scores = [
            FeatureScore(name=s.name, test=s.test, score=s.score, threshold=s.threshold, drifted=s.drifted)
            for s in result.scores
        ]
        work.report_uri = result.report_uri or work.report_uri
    # NotEnoughData / SchemaMismatch / Failed are no verdict on input drift (other triggers may have one)
    firing = triggers.evaluate(monitor, result if verdict != "Failed" else None)
    work.fired = firing.fired
    triggers.count_breaches(work, firing)
    _record_quality(work, result, tick)
    if result.pruned_objects:
        totals = work.pruned or PrunedTotals()
        work.pruned = PrunedTotals(
            objects=totals.objects + result.pruned_objects, bytes=totals.bytes + result.pruned_bytes, last_time=tick
        )
    work.history = [*work.history, _record(tick, verdict, message, job_name, result, firing, baseline)][
        -monitor.spec.history_limit :
    ]
    return _events(verdict, message, tick, job_name, result, firing, outcome.reason)


def _record(
    tick: datetime,
    verdict: str,
    message: str,
    job_name: str,
    result: DriftResult,
    firing: triggers.Firing,
    baseline: Baseline | None,
) -> CheckRecord:
    quality = result.quality
    return CheckRecord(
        time=tick,
        verdict=verdict,
        drifted_share=result.drifted_share,
        drifted_features=list(result.drifted_features),
        samples=result.samples,
        report_uri=result.report_uri,
        job=job_name,
        message=(message or None) and message[:1024],
        fired=firing.fired,
        quality_metric=quality.metric[:32] if quality is not None else None,
        quality=quality.value if quality is not None else None,
        labelled=quality.labelled if quality is not None else None,
        prediction_drift_score=result.prediction_drift.score if result.prediction_drift is not None else None,
        baseline_version=baseline.version if baseline is not None else None,
    )


def _events(
    verdict: str,
    message: str,
    tick: datetime,
    job_name: str,
    result: DriftResult,
    firing: triggers.Firing,
    reason: str | None,
) -> list[EventSpec]:
    events: list[EventSpec] = []
    if verdict == "Drift":
        events.append(
            warning(
                "DriftDetected",
                f"drift at {tick.isoformat()}: {result.drifted_share} of features drifted "
                f"({', '.join(result.drifted_features[:10])})",
            )
        )
    elif verdict == "Failed":
        events.append(warning(reason or cond.Reason.CHECK_FAILED, f"drift check {job_name} failed: {message}"))
    elif verdict in ("NotEnoughData", "SchemaMismatch"):
        events.append(warning(verdict, message or verdict))
    for name, why in zip(firing.fired, firing.reasons, strict=True):
        if name != triggers.INPUT_DRIFT:
            events.append(warning("TriggerFired", f"{name} at {tick.isoformat()}: {why}"))
    return events


def summarize(work: DriftMonitorStatus, monitor: DriftMonitor, ready: cond.State, now: datetime) -> None:
    gen = monitor.generation
    work.conditions = cond.set_state(work.conditions, cond.Type.READY, ready, now=now, generation=gen)
    verdict = work.last_verdict
    if verdict == "Drift":
        share = f"{work.drifted_share} of features drifted at the last check"
        detected = cond.State(cond.TRUE, cond.Reason.DRIFT, share)
    elif verdict == "NoDrift":
        detected = cond.State(cond.FALSE, cond.Reason.NO_DRIFT, "no drift at the last check")
    elif verdict is None:
        detected = cond.State(cond.UNKNOWN, cond.Reason.WAITING_FOR_SCHEDULE, "no check has finished yet")
    else:
        last = work.history[-1].message if work.history else ""
        detected = cond.State(cond.UNKNOWN, VERDICT_REASONS.get(verdict, cond.Reason.CHECK_FAILED), last or verdict)
    work.conditions = cond.set_state(work.conditions, cond.Type.DRIFT_DETECTED, detected, now=now, generation=gen)
    # checks on a schedule are the steady state, not reconciling: only waiting for the Model or baseline is
    work.conditions = cond.with_kstatus(work.conditions, now=now, generation=gen)
    work.observed_generation = gen


def set_retrain_state(work: DriftMonitorStatus, monitor: DriftMonitor, state: cond.State, now: datetime) -> None:
    """RetrainRequested: what the latest fired trigger led to (set only once a trigger led somewhere)."""
    work.conditions = cond.set_state(
        work.conditions, cond.Type.RETRAIN_REQUESTED, state, now=now, generation=monitor.generation
    )


__all__ = ["VERDICT_REASONS", "record_check", "set_retrain_state", "summarize", "tick_of"]
