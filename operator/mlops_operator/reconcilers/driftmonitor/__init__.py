"""DriftMonitor: scheduled checks, triggers, and refresh-then-retrain (see reconciler.py)."""

from mlops_operator.reconcilers.driftmonitor.checks import VERDICT_REASONS, record_check, summarize, tick_of
from mlops_operator.reconcilers.driftmonitor.reconciler import RECONCILER, reconcile, steps
from mlops_operator.reconcilers.driftmonitor.triggers import retrain_annotation, should_retrain

__all__ = [
    "RECONCILER",
    "VERDICT_REASONS",
    "reconcile",
    "record_check",
    "retrain_annotation",
    "should_retrain",
    "steps",
    "summarize",
    "tick_of",
]
