"""The work queue's priority lanes and fixed worker pool, on a real event loop.

Every scenario is ordered by events (gates the reconciles wait on), never by the clock: the only
timeouts are guards against a hang.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from mlops_operator.reconcilers.context import Key, ReconcileResult
from mlops_operator.reconcilers.queue import Lane, WorkQueue

CHANGE = Key("Model", "ns", "changed")
HANG_GUARD = 10.0


def keys(count: int, prefix: str = "resync") -> list[Key]:
    return [Key("Model", "ns", f"{prefix}-{i}") for i in range(count)]


class Recorder:
    """A reconcile that records the order of starts and holds the keys it is told to hold."""

    def __init__(self, hold: Callable[[Key], bool] = lambda key: False) -> None:
        self.started: list[Key] = []
        self.running = 0
        self.peak = 0
        self.gate = asyncio.Event()
        self._hold = hold

    async def __call__(self, key: Key) -> ReconcileResult:
        self.started.append(key)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            if self._hold(key):
                await self.gate.wait()
            else:
                await asyncio.sleep(0)
        finally:
            self.running -= 1
        return ReconcileResult()


async def settle() -> None:
    """Let every ready task run until none is left to run (the queue's workers included)."""
    for _ in range(50):
        await asyncio.sleep(0)


BLOCKER = Key("Model", "ns", "blocker")


async def one_busy_worker() -> tuple[WorkQueue, Recorder]:
    """A queue with a single worker, already held by BLOCKER's run until recorder.gate is set."""
    recorder = Recorder(hold=lambda key: key == BLOCKER)
    queue = WorkQueue(recorder, workers=1, reserved_for_high=0)
    queue.trigger(BLOCKER)
    await settle()
    return queue, recorder


def run(scenario: Callable[[], Awaitable[object]]) -> object:
    return asyncio.run(asyncio.wait_for(scenario(), HANG_GUARD))


def test_a_change_never_waits_behind_a_resync_burst() -> None:
    async def scenario() -> tuple[list[Key], int]:
        recorder = Recorder(hold=lambda key: key != CHANGE)  # every resync run hangs until the end
        queue = WorkQueue(recorder, workers=4, reserved_for_high=2)
        for key in keys(1000):
            queue.trigger(key, Lane.LOW)
        await settle()
        await queue.reconcile(CHANGE)  # the update arrives in the middle of the burst
        started_before_release = list(recorder.started)
        recorder.gate.set()
        await settle()
        await queue.close()
        return started_before_release, recorder.peak

    started, peak = run(scenario)  # type: ignore[misc]
    assert started[-1] == CHANGE
    assert len(started) == 3  # two resync runs on the general workers, then the change on a reserved one
    assert peak == 3


def test_reserved_workers_never_take_normal_or_low_work() -> None:
    async def scenario() -> int:
        recorder = Recorder(hold=lambda key: True)
        queue = WorkQueue(recorder, workers=3, reserved_for_high=2)
        for key in keys(5, "low"):
            queue.trigger(key, Lane.LOW)
        for key in keys(5, "created"):
            queue.trigger(key, Lane.NORMAL)
        await settle()
        running = recorder.running
        recorder.gate.set()
        await queue.close()
        return running

    assert run(scenario) == 1


def test_lanes_are_served_most_urgent_first() -> None:
    async def scenario() -> list[str]:
        queue, recorder = await one_busy_worker()
        for key in keys(3, "low"):
            queue.trigger(key, Lane.LOW)
        queue.trigger(Key("Model", "ns", "created"), Lane.NORMAL)
        queue.trigger(CHANGE, Lane.HIGH)
        recorder.gate.set()
        await settle()
        await queue.close()
        return [key.name for key in recorder.started]

    assert run(scenario) == ["blocker", "changed", "created", "low-0", "low-1", "low-2"]


def test_a_waiting_key_moves_to_a_more_urgent_lane_never_to_a_less_urgent_one() -> None:
    async def scenario() -> list[str]:
        queue, recorder = await one_busy_worker()
        low = keys(3, "low")
        for key in low:
            queue.trigger(key, Lane.LOW)
        queue.trigger(low[2], Lane.HIGH)  # the resync's key gets an event: it jumps ahead
        queue.trigger(low[2], Lane.LOW)  # …and a later resync does not send it back
        counts = queue.waiting()
        recorder.gate.set()
        await settle()
        await queue.close()
        assert counts == {Lane.HIGH: 1, Lane.NORMAL: 0, Lane.LOW: 2}
        return [key.name for key in recorder.started]

    assert run(scenario) == ["blocker", "low-2", "low-0", "low-1"]  # low-2 ran once


def test_triggers_during_a_run_coalesce_into_exactly_one_more_run_in_the_most_urgent_lane() -> None:
    async def scenario() -> tuple[list[str], int]:
        key = Key("Model", "ns", "m")
        recorder = Recorder(hold=lambda k: k == key and recorder.started.count(key) == 1)
        queue = WorkQueue(recorder, workers=1, reserved_for_high=0)
        queue.trigger(key)
        await settle()  # the first run is in flight; the only worker holds it
        queue.trigger(key, Lane.LOW)
        other = Key("Model", "ns", "other")
        queue.trigger(other, Lane.NORMAL)
        for _ in range(20):
            queue.trigger(key, Lane.HIGH)  # upgrades the queued follow-up to HIGH: before `other`
        recorder.gate.set()
        await settle()
        await queue.close()
        return [k.name for k in recorder.started], recorder.peak

    started, peak = run(scenario)  # type: ignore[misc]
    assert started == ["m", "m", "other"]
    assert peak == 1


def test_a_waiter_returns_only_after_a_run_that_started_after_it_asked() -> None:
    async def scenario() -> list[str]:
        key = Key("Model", "ns", "m")
        log: list[str] = []
        first_run = asyncio.Event()
        release = asyncio.Event()

        async def reconcile(k: Key) -> ReconcileResult:
            log.append("start")
            if not first_run.is_set():
                first_run.set()
                await release.wait()
            log.append("end")
            return ReconcileResult()

        queue = WorkQueue(reconcile, workers=2, reserved_for_high=1)
        first = asyncio.create_task(queue.reconcile(key))
        await first_run.wait()
        second = asyncio.create_task(queue.reconcile(key))
        await settle()
        release.set()
        await first
        await second
        log.append("second returned")
        await queue.close()
        return log

    assert run(scenario) == ["start", "end", "start", "end", "second returned"]


def test_a_failed_run_backs_off_in_the_low_lane() -> None:
    async def scenario() -> tuple[list[str], dict[Lane, int]]:
        key = Key("Model", "ns", "m")
        seen: list[str] = []

        async def reconcile(k: Key) -> ReconcileResult:
            raise RuntimeError("api down")

        queue = WorkQueue(reconcile, on_result=lambda k, result, _: seen.append(result), workers=2, reserved_for_high=1)
        await queue.reconcile(key)
        held = len(queue)  # a wake-up and a failure count to back off from
        queue._wake(key, Lane.LOW)  # what the backoff's timer calls: the retry goes to the LOW lane
        counts = queue.waiting()
        await queue.close()
        assert held == 1
        return seen, counts

    seen, counts = run(scenario)  # type: ignore[misc]
    assert seen == ["error"]
    assert counts == {Lane.HIGH: 0, Lane.NORMAL: 0, Lane.LOW: 1}


def test_a_pool_without_a_general_worker_is_refused() -> None:
    async def reconcile(key: Key) -> ReconcileResult:
        return ReconcileResult()

    with pytest.raises(ValueError, match="reserved_for_high"):
        WorkQueue(reconcile, workers=2, reserved_for_high=2)
