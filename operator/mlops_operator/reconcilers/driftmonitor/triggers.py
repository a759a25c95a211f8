"""Which triggers a finished check fires, and whether the monitor acts on them now. Pure.

A trigger fires, has a verdict without firing, or has no verdict:

- inputDrift fires on the verdict Drift; NotEnoughData, SchemaMismatch and Failed are no verdict;
- predictionDrift (when enabled) fires when the predictions drifted; no score is no verdict;
- performance (when set) fires when the live metric is below its threshold (above, for rmse and
  mae); fewer labelled predictions than minLabels, or the metric not computed, is no verdict.

A check with a fired trigger is a breach; a check where some enabled trigger had a verdict and none
fired resets the breach count; a check without any verdict leaves it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from mlops_operator.api.results import DriftResult, LiveQualityResult
from mlops_operator.api.v1alpha1.driftmonitor import DriftMonitor, DriftMonitorStatus, PerformanceTrigger
from mlops_operator.api.v1alpha1.model import LOWER_IS_BETTER, Metric, Model

INPUT_DRIFT: Final = "inputDrift"
PREDICTION_DRIFT: Final = "predictionDrift"
PERFORMANCE: Final = "performance"
# The Dataset reads a refresh request of at most 256 characters (status.lastRefresh.request), the Model a
# retrain request of at most 512; one value serves both.
MAX_REQUEST: Final = 256


@dataclass(frozen=True)
class Firing:
    """What one check's triggers said."""

    fired: list[str] = field(default_factory=list)  # trigger names, in table order
    verdict: bool = False  # some enabled trigger had a verdict (fired or not)
    reasons: list[str] = field(default_factory=list)  # one retrain reason per fired trigger


def quality_metric(monitor: DriftMonitor, model: Model | None) -> Metric:
    """The live metric: the performance trigger's, else the Model's validation metric."""
    trigger = monitor.spec.triggers.performance
    if trigger is not None and trigger.metric is not None:
        return Metric(trigger.metric)
    return Metric(model.spec.validation.metric) if model is not None else Metric.ACCURACY


def performance_breach(trigger: PerformanceTrigger, quality: LiveQualityResult | None) -> bool | None:
    """True: decayed; False: fine; None: no verdict (too few labels, the metric not computed)."""
    if quality is None or quality.value is None or quality.labelled < trigger.min_labels:
        return None
    if quality.metric in LOWER_IS_BETTER:
        return quality.value > trigger.threshold
    return quality.value < trigger.threshold


def _features(drifted: list[str]) -> str:
    more = f" and {len(drifted) - 10} more" if len(drifted) > 10 else ""
    return ", ".join(drifted[:10]) + more or "dataset drift"


def _prediction(monitor: DriftMonitor, result: DriftResult) -> tuple[bool, str | None]:
    """(had a verdict, the reason if it fired)."""
    prediction = result.prediction_drift
    if not monitor.spec.triggers.prediction_drift.enabled or prediction is None or prediction.score is None:
        return False, None
    if not prediction.drifted:
        return True, None
    return True, f"prediction drift: {prediction.test} {prediction.score:.4g} (threshold {prediction.threshold:g})"


def _performance(monitor: DriftMonitor, result: DriftResult) -> tuple[bool, str | None]:
    """(had a verdict, the reason if it fired)."""
    trigger, quality = monitor.spec.triggers.performance, result.quality
    if trigger is None or quality is None:
        return False, None
    breach = performance_breach(trigger, quality)
    if not breach:
        return breach is not None, None
    side = ">" if quality.metric in LOWER_IS_BETTER else "<"
    return True, (
        f"quality: {quality.metric} {quality.value:.4g} {side} {trigger.threshold:g} "
        f"on {quality.labelled} labelled predictions"
    )


def evaluate(monitor: DriftMonitor, result: DriftResult | None) -> Firing:
    """The triggers of `monitor` on one check's result (None: the check failed)."""
    if result is None:
        return Firing()
    fired, reasons, verdict = [], [], False
    if monitor.spec.triggers.input_drift and result.verdict in ("Drift", "NoDrift"):
        verdict = True
        if result.verdict == "Drift":
            fired.append(INPUT_DRIFT)
            reasons.append(f"drift: {_features(list(result.drifted_features))}")
    for name, (had_verdict, reason) in (
        (PREDICTION_DRIFT, _prediction(monitor, result)),
        (PERFORMANCE, _performance(monitor, result)),
    ):
        verdict = verdict or had_verdict
        if reason is not None:
            fired.append(name)
            reasons.append(reason)
    return Firing(fired, verdict, reasons)


def count_breaches(work: DriftMonitorStatus, firing: Firing) -> None:
    if firing.fired:
        work.consecutive_breaches += 1
    elif firing.verdict:
        work.consecutive_breaches = 0


def cooldown_end(work: DriftMonitorStatus, monitor: DriftMonitor) -> datetime | None:
    """When the monitor may act again: cooldownSeconds after its latest refresh or retrain request."""
    last = max((t for t in (work.last_retrain_request, work.last_refresh_request) if t is not None), default=None)
    return None if last is None else last + timedelta(seconds=monitor.spec.action.cooldown_seconds)


def should_retrain(work: DriftMonitorStatus, monitor: DriftMonitor, now: datetime) -> tuple[bool, str]:
    """A trigger fired + retrain wanted + enough consecutive breaches + cooldown passed + no refresh
    pending. Pure. (The name predates the refresh: acting now starts with the Dataset's refresh.)"""
    action = monitor.spec.action
    if not work.fired or not action.retrain:
        return False, ""
    if work.consecutive_breaches < action.consecutive_breaches:
        return False, f"{work.consecutive_breaches} of {action.consecutive_breaches} consecutive breaches"
    if work.pending_refresh is not None:
        pending = work.pending_refresh
        return False, f"waiting for Dataset {pending.dataset} to refresh (asked at {pending.requested_at.isoformat()})"
    end = cooldown_end(work, monitor)
    if end is not None and now < end:
        return False, f"cooldown until {end.isoformat()}"
    return True, ""


def request_value(tick: datetime, reasons: list[str]) -> str:
    """`<RFC3339>;<reason>` for the refresh and the retrain annotations: derived from the tick, so
    writing it again after a crash is the same request."""
    reason = "; ".join(reasons) or "drift: dataset drift"
    return f"{tick.strftime('%Y-%m-%dT%H:%M:%SZ')};{reason}"[:MAX_REQUEST]


def retrain_annotation(tick: datetime, drifted: list[str]) -> str:
    """The request for input drift alone (what monitors wrote before there were other triggers)."""
    return request_value(tick, [f"drift: {_features(drifted)}"])


__all__ = [
    "INPUT_DRIFT",
    "PERFORMANCE",
    "PREDICTION_DRIFT",
    "Firing",
    "cooldown_end",
    "count_breaches",
    "evaluate",
    "performance_breach",
    "quality_metric",
    "request_value",
    "retrain_annotation",
    "should_retrain",
]
