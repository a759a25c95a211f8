"""The work queue, on a real event loop: serialization per key, coalescing, backoff."""

from __future__ import annotations

import asyncio

from mlops_operator.reconcilers.context import Key, ReconcileResult
from mlops_operator.reconcilers.queue import WorkQueue

KEY = Key("Model", "ns", "m")


def test_reconciles_of_one_key_never_overlap_and_bursts_coalesce() -> None:
    async def scenario() -> tuple[int, int]:
        running = 0
        peak = 0
        runs = 0
        gate = asyncio.Event()

        async def reconcile(key: Key) -> ReconcileResult:
            nonlocal running, peak, runs
            running += 1
            peak = max(peak, running)
            runs += 1
            await gate.wait()
            running -= 1
            return ReconcileResult()

        queue = WorkQueue(reconcile)
        first = asyncio.create_task(queue.reconcile(KEY))
        await asyncio.sleep(0)
        burst = [asyncio.create_task(queue.reconcile(KEY)) for _ in range(20)]
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(first, *burst)
        return peak, runs

    peak, runs = asyncio.run(scenario())
    assert peak == 1
    assert runs == 2  # the one in flight, plus one for the whole burst


def test_failures_are_retried_with_backoff_then_succeed() -> None:
    async def scenario() -> list[str]:
        seen: list[str] = []
        attempts = 0
        done = asyncio.Event()

        async def reconcile(key: Key) -> ReconcileResult:
            nonlocal attempts
            attempts += 1
            if attempts == 1:
                raise RuntimeError("api down")
            done.set()
            return ReconcileResult()

        queue = WorkQueue(reconcile, on_result=lambda key, result, _: seen.append(result))
        await queue.reconcile(KEY)
        await asyncio.wait_for(done.wait(), timeout=5)  # first backoff is 1 s
        await queue.close()
        return seen

    assert asyncio.run(scenario()) == ["error", "ok"]


def test_requeue_keeps_the_earliest_wakeup_and_outcomes_trigger_others() -> None:
    async def scenario() -> list[Key]:
        order: list[Key] = []
        other = Key("Model", "ns", "other")
        done = asyncio.Event()

        async def reconcile(key: Key) -> ReconcileResult:
            order.append(key)
            if key == other:
                done.set()
            return ReconcileResult(also=(other,)) if key == KEY else ReconcileResult()

        queue = WorkQueue(reconcile)
        queue.requeue(KEY, 60)
        queue.requeue(KEY, 0.01)  # earlier wins
        queue.requeue(KEY, 30)  # later is ignored
        await asyncio.wait_for(done.wait(), timeout=5)
        await queue.close()
        return order

    assert asyncio.run(scenario()) == [KEY, Key("Model", "ns", "other")]
