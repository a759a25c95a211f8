from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mlops_operator.api.v1alpha1.driftmonitor import Schedule
from mlops_operator.reconcilers import schedule

EVERY_5_MIN = Schedule(interval_seconds=300)
CRON_HOURLY = Schedule(cron="15 * * * *")
T = datetime(2026, 3, 1, 10, 7, 30, tzinfo=UTC)


def test_interval_ticks_are_aligned_to_the_epoch() -> None:
    assert schedule.latest_tick(EVERY_5_MIN, T) == datetime(2026, 3, 1, 10, 5, tzinfo=UTC)
    assert schedule.next_tick(EVERY_5_MIN, T) == datetime(2026, 3, 1, 10, 10, tzinfo=UTC)


def test_cron_ticks() -> None:
    assert schedule.latest_tick(CRON_HOURLY, T) == datetime(2026, 3, 1, 9, 15, tzinfo=UTC)
    assert schedule.next_tick(CRON_HOURLY, T) == datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    on_the_tick = datetime(2026, 3, 1, 10, 15, 20, tzinfo=UTC)
    assert schedule.latest_tick(CRON_HOURLY, on_the_tick) == datetime(2026, 3, 1, 10, 15, tzinfo=UTC)


def test_due_fires_once_per_tick_and_survives_restarts() -> None:
    first = schedule.due(EVERY_5_MIN, T, None)
    assert first == datetime(2026, 3, 1, 10, 5, tzinfo=UTC)
    # a restart a minute later, with lastCheck persisted: nothing to do
    assert schedule.due(EVERY_5_MIN, T + timedelta(minutes=1), first) is None
    # down for an hour: only the latest tick runs, not the twelve missed ones
    assert schedule.due(EVERY_5_MIN, T + timedelta(hours=1), first) == datetime(2026, 3, 1, 11, 5, tzinfo=UTC)


def test_refresh_tick_index() -> None:
    assert schedule.interval_tick(0, T) == 0
    a = schedule.interval_tick(600, T)
    assert schedule.interval_tick(600, T + timedelta(seconds=60)) == a
    assert schedule.interval_tick(600, schedule.interval_start(600, a + 1)) == a + 1
