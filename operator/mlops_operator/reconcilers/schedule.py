"""Schedule math for refresh intervals and drift checks. Pure; every time is UTC and passed in.

Ticks are aligned to the epoch (intervals) or to the cron expression, never to when the operator
started, so a restarted operator computes the same ticks: with `lastCheck` persisted it neither
re-fires a tick it already ran nor replays every tick it missed (only the latest one runs).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from croniter import croniter

from mlops_operator.api.v1alpha1.driftmonitor import Schedule


def _epoch(t: datetime) -> float:
    return t.astimezone(UTC).timestamp()


def _from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def interval_tick(interval_seconds: int, now: datetime) -> int:
    """The index of the interval `now` falls in (0 when there is no interval)."""
    return int(_epoch(now) // interval_seconds) if interval_seconds else 0


def interval_start(interval_seconds: int, tick: int) -> datetime:
    return _from_epoch(tick * interval_seconds)


def latest_tick(schedule: Schedule, now: datetime) -> datetime:
    """The newest scheduled time at or before `now`."""
    if schedule.cron:
        minute = now.astimezone(UTC).replace(second=0, microsecond=0)
        if croniter.match(schedule.cron, minute):
            return minute
        prev: datetime = croniter(schedule.cron, minute).get_prev(datetime)
        return prev.astimezone(UTC)
    interval = schedule.interval_seconds or 300
    return _from_epoch(interval_tick(interval, now) * interval)


def next_tick(schedule: Schedule, after: datetime) -> datetime:
    """The first scheduled time strictly after `after`."""
    if schedule.cron:
        nxt: datetime = croniter(schedule.cron, after.astimezone(UTC)).get_next(datetime)
        return nxt.astimezone(UTC)
    interval = schedule.interval_seconds or 300
    return _from_epoch((interval_tick(interval, after) + 1) * interval)


def due(schedule: Schedule, now: datetime, last_check: datetime | None) -> datetime | None:
    """The tick to run now, or None when the latest tick already ran."""
    tick = latest_tick(schedule, now)
    if last_check is not None and tick <= last_check:
        return None
    return tick


def seconds_until(when: datetime, now: datetime) -> float:
    return max(0.0, (when - now) / timedelta(seconds=1))
