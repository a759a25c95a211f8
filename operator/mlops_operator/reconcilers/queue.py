"""A per-object work queue with priority lanes and a fixed pool of workers.

Every trigger (kopf create/update/resume, a child Job's or Deployment's event, a scheduled wake-up,
the periodic resync) funnels into `trigger(key, lane)`. Three lanes, served in order:

    HIGH    a spec update, a child's event, a scheduled wake-up: someone is waiting for these
    NORMAL  create and resume (a restart's catch-up)
    LOW     the resync and the backoff after a failure

A fixed pool of workers takes keys from the lanes; `RESERVED_FOR_HIGH` of them take only HIGH work,
so a change never waits behind a resync burst of thousands of keys, however long their runs are.

Per key: runs never overlap. A trigger while a run is in flight queues exactly one more run after it
(in the most urgent lane asked for), and every further trigger joins that queued run: the last state
always gets a reconcile, and a storm of events costs at most two. A trigger for a key already waiting
in a lane moves it to a more urgent lane, never to a less urgent one. Failures are retried with
exponential backoff (1 s … 5 min), whichever path triggered them.

The queue holds a key only while it has something to do for it (a run in flight or queued, a
wake-up, a failure count to back off from): an idle key is dropped, so objects that were deleted
leave nothing behind, whatever triggered their last run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum

from mlops_operator.reconcilers.context import Key, ReconcileResult

ReconcileFn = Callable[[Key], Awaitable[ReconcileResult]]
log = logging.getLogger("mlops_operator.queue")
MAX_BACKOFF = 300.0
WORKERS = 8  # reconciles in flight at once; each makes a few API calls on kube's own thread pool
RESERVED_FOR_HIGH = 2


class Lane(IntEnum):
    """Lower is more urgent."""

    HIGH = 0
    NORMAL = 1
    LOW = 2


@dataclass
class _KeyState:
    lane: Lane | None = None  # waiting in this lane (never while running)
    running: bool = False
    again: Lane | None = None  # triggered while running: one more run, in this lane
    waiters: list[asyncio.Future[None]] = field(default_factory=list)  # for the next run to start
    failures: int = 0
    wakeup: asyncio.TimerHandle | None = None
    wakeup_at: float = 0.0
    queued_at: float = 0.0  # monotonic time the queued run was asked for (its first trigger)
    waited: float = 0.0  # how long the run in flight waited in its lane

    @property
    def idle(self) -> bool:
        """Nothing in flight, queued or scheduled, and no backoff to remember: safe to drop."""
        busy = self.running or self.lane is not None or self.again is not None or self.waiters
        return not busy and self.wakeup is None and self.failures == 0


@dataclass
class _IdleWorker:
    high_only: bool
    wake: asyncio.Future[None]


class WorkQueue:
    def __init__(
        self,
        reconcile: ReconcileFn,
        *,
        on_result: Callable[[Key, str, float], None] | None = None,
        workers: int = WORKERS,
        reserved_for_high: int = RESERVED_FOR_HIGH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= reserved_for_high < workers:
            raise ValueError(f"reserved_for_high must be in [0, workers): {reserved_for_high}, {workers}")
        self._reconcile = reconcile
        self._on_result = on_result
        self._states: dict[Key, _KeyState] = {}
        self._lanes: dict[Lane, deque[Key]] = {lane: deque() for lane in Lane}
        self._idle: list[_IdleWorker] = []
        self._workers: list[asyncio.Task[None]] = []
        self._pool = (workers, reserved_for_high)
        self._closed = False
        self._clock = clock  # for how long a run waited in its lane

    def _state(self, key: Key) -> _KeyState:
        return self._states.setdefault(key, _KeyState())

    # --- adding work ------------------------------------------------------------------------
    def trigger(self, key: Key, lane: Lane = Lane.HIGH) -> None:
        """Fire and forget: reconcile `key` soon, in `lane`."""
        if not self._closed:
            self._add(key, lane)

    async def reconcile(self, key: Key, lane: Lane = Lane.HIGH) -> None:
        """Queue a run of `key` (or join the queued one) and return when it is done."""
        if self._closed:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._add(key, lane).waiters.append(done)
        await asyncio.shield(done)

    def _add(self, key: Key, lane: Lane) -> _KeyState:
        self._start_workers()
        state = self._state(key)
        if state.running:
            if state.again is None:
                state.queued_at = self._clock()
            state.again = lane if state.again is None else min(state.again, lane)
        elif state.lane is None or lane < state.lane:
            if state.lane is None:
                state.queued_at = self._clock()
            state.lane = lane  # an entry left in a less urgent lane is skipped when it comes up
            self._lanes[lane].append(key)
            self._wake_worker(lane)
        return state

    def _wake_worker(self, lane: Lane) -> None:
        for index, worker in enumerate(self._idle):
            if lane == Lane.HIGH or not worker.high_only:
                del self._idle[index]
                if not worker.wake.done():
                    worker.wake.set_result(None)
                return

    # --- the workers ------------------------------------------------------------------------
    def _start_workers(self) -> None:
        if self._workers:
            return
        loop = asyncio.get_running_loop()
        workers, reserved = self._pool
        self._workers = [loop.create_task(self._work(high_only=i < reserved)) for i in range(workers)]

    def _next(self, high_only: bool) -> Key | None:
        for lane in (Lane.HIGH,) if high_only else tuple(Lane):
            keys = self._lanes[lane]
            while keys:
                key = keys.popleft()
                state = self._states.get(key)
                if state is not None and state.lane == lane:
                    state.lane = None
                    return key
        return None

    async def _work(self, *, high_only: bool) -> None:
        loop = asyncio.get_running_loop()
        while True:
            key = self._next(high_only)
            if key is None:
                worker = _IdleWorker(high_only, loop.create_future())
                self._idle.append(worker)
                await worker.wake
                continue
            await self._run(key, self._states[key])

    async def _run(self, key: Key, state: _KeyState) -> None:
        state.running = True
        state.waited = self._clock() - state.queued_at
        waiters, state.waiters = state.waiters, []  # triggers from now on wait for the next run
        try:
            await self._reconcile_once(key, state)
        finally:
            state.running = False
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            if state.again is not None:
                lane, state.again, asked = state.again, None, state.queued_at
                self._add(key, lane)
                state.queued_at = asked  # it has waited since the trigger during the run
            self._drop_if_idle(key, state)

    async def _reconcile_once(self, key: Key, state: _KeyState) -> None:
        started = time.monotonic()
        try:
            result = await self._reconcile(key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            state.failures += 1
            delay = min(MAX_BACKOFF, 2.0 ** (state.failures - 1))
            log.warning("%s: reconcile failed (%s: %s); retrying in %.0fs", key, type(exc).__name__, exc, delay)
            if state.failures == 1:
                log.debug("%s: traceback", key, exc_info=True)
            self._report(key, "error", started)
            self.requeue(key, delay, Lane.LOW)
            return
        state.failures = 0
        self._report(key, "ok", started)
        if result.requeue_after is not None:
            self.requeue(key, result.requeue_after)
        for other in result.also:
            if other != key:
                self.trigger(other)

    def _report(self, key: Key, result: str, started: float) -> None:
        if self._on_result is not None:
            self._on_result(key, result, time.monotonic() - started)

    def _drop_if_idle(self, key: Key, state: _KeyState) -> None:
        if state.idle and self._states.get(key) is state:
            del self._states[key]

    # --- wake-ups and forgetting ------------------------------------------------------------
    def requeue(self, key: Key, delay: float, lane: Lane = Lane.HIGH) -> None:
        """Wake `key` after `delay` seconds; an earlier pending wake-up wins over a later one."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        state = self._state(key)
        when = loop.time() + max(0.0, delay)
        if state.wakeup is not None and not state.wakeup.cancelled() and state.wakeup_at <= when:
            return
        if state.wakeup is not None:
            state.wakeup.cancel()
        state.wakeup_at = when
        state.wakeup = loop.call_at(when, self._wake, key, lane)

    def _wake(self, key: Key, lane: Lane) -> None:
        state = self._states.get(key)
        if state is not None:
            state.wakeup = None
        self.trigger(key, lane)

    def forget(self, key: Key) -> None:
        """The object is gone: cancel its wake-up and backoff. A run in flight finishes first (runs of
        one key never overlap); the key is dropped as soon as it is idle."""
        state = self._states.get(key)
        if state is None:
            return
        if state.wakeup is not None:
            state.wakeup.cancel()
            state.wakeup = None
        state.failures = 0
        self._drop_if_idle(key, state)

    def waited(self, key: Key) -> float:
        """How long the run of `key` now in flight waited in its lane before a worker took it."""
        state = self._states.get(key)
        return state.waited if state is not None and state.running else 0.0

    def __len__(self) -> int:
        """How many keys the queue holds (in flight, queued, scheduled or backing off)."""
        return len(self._states)

    def waiting(self) -> dict[Lane, int]:
        """How many keys wait in each lane (not counting runs in flight)."""
        counts = dict.fromkeys(Lane, 0)
        for state in self._states.values():
            if state.lane is not None:
                counts[state.lane] += 1
        return counts

    async def close(self) -> None:
        self._closed = True
        for state in self._states.values():
            if state.wakeup is not None:
                state.wakeup.cancel()
            for waiter in state.waiters:
                waiter.cancel()
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
