"""Serving history: which version served at an instant, and how periods merge and are bounded.

Shared by the operator (status), the registry workload (the store's full copy) and the kubectl
plugin (`history --at`), so all three read a period the same way: it covers [from, to).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from mlops_operator.api.v1alpha1.model import ModelVersion
from mlops_operator.api.v1alpha1.serving_periods import MAX_SERVING_PERIODS, ServingPeriod


def covers(period: ServingPeriod, at: datetime) -> bool:
    """`at` falls in [from, to): at the instant one period ends, the next one's version serves."""
    return period.start <= at and (period.to is None or at < period.to)


def served_at(versions: Iterable[ModelVersion], at: datetime) -> tuple[ModelVersion, ServingPeriod] | None:
    """The version that served at `at` and its period; None when nothing served then (as recorded)."""
    for record in versions:
        for period in record.serving_periods or []:
            if covers(period, at):
                return record, period
    return None


def earliest_recorded(versions: Iterable[ModelVersion]) -> datetime | None:
    """The start of the oldest period these records hold."""
    return min((p.start for v in versions for p in v.serving_periods or []), default=None)


def open_period(record: ModelVersion) -> ServingPeriod | None:
    last = record.serving_periods[-1] if record.serving_periods else None
    return last if last is not None and last.to is None else None


def append_bounded(record: ModelVersion, period: ServingPeriod) -> None:
    """Append `period`; beyond MAX_SERVING_PERIODS the oldest leave status (the store keeps them)."""
    periods = [*(record.serving_periods or []), period]
    dropped = max(0, len(periods) - MAX_SERVING_PERIODS)
    record.serving_periods = periods[dropped:]
    if dropped:
        record.earlier_periods = (record.earlier_periods or 0) + dropped


def merge_periods(stored: Any, current: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The store's periods of a version united with status's (as JSON): keyed by `from`, status wins
    (it closes an open period), oldest first. Periods status dropped stay."""
    by_start: dict[str, dict[str, Any]] = {}
    for period in stored if isinstance(stored, list) else []:
        if isinstance(period, dict) and isinstance(period.get("from"), str):
            by_start[period["from"]] = period
    for period in current:
        by_start[str(period["from"])] = period
    return sorted(by_start.values(), key=lambda p: ServingPeriod.model_validate(p).start)


def status_bounded(entry: dict[str, Any]) -> dict[str, Any]:
    """A stored registry entry cut to what status holds: the newest MAX_SERVING_PERIODS periods."""
    periods = entry.get("servingPeriods")
    if not isinstance(periods, list) or len(periods) <= MAX_SERVING_PERIODS:
        return entry
    dropped = len(periods) - MAX_SERVING_PERIODS
    return {**entry, "servingPeriods": periods[dropped:], "earlierPeriods": dropped}


__all__ = [
    "append_bounded",
    "covers",
    "earliest_recorded",
    "merge_periods",
    "open_period",
    "served_at",
    "status_bounded",
]
