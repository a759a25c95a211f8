"""A per-object work queue: reconciles of one object never overlap, and bursts coalesce.

Every trigger (kopf create/update/resume, a child Job's or Deployment's event, a scheduled wake-up,
the periodic resync) funnels into `reconcile(key)`. If a run for that key is in flight, one more run
is queued behind it and every further trigger joins that queued run: the last state always gets a
reconcile, and a storm of events costs at most two. Failures are retried here with exponential
backoff (1 s … 5 min), whichever path triggered them, so no path retries in a tight loop.

The queue holds a key only while it has something to do for it (a run in flight or queued, a
wake-up, a failure count to back off from): an idle key is dropped, so objects that were deleted
leave nothing behind, whatever triggered their last run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mlops_operator.reconcilers.context import Key, ReconcileResult

ReconcileFn = Callable[[Key], Awaitable[ReconcileResult]]
log = logging.getLogger("mlops_operator.queue")
MAX_BACKOFF = 300.0


@dataclass
class _KeyState:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: asyncio.Future[None] | None = None
    failures: int = 0
    wakeup: asyncio.TimerHandle | None = None
    wakeup_at: float = 0.0

    @property
    def idle(self) -> bool:
        """Nothing in flight, queued or scheduled, and no backoff to remember: safe to drop."""
        return not self.lock.locked() and self.pending is None and self.wakeup is None and self.failures == 0


class WorkQueue:
    def __init__(self, reconcile: ReconcileFn, *, on_result: Callable[[Key, str, float], None] | None = None) -> None:
        self._reconcile = reconcile
        self._on_result = on_result
        self._states: dict[Key, _KeyState] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def _state(self, key: Key) -> _KeyState:
        return self._states.setdefault(key, _KeyState())

    async def reconcile(self, key: Key) -> None:
        """Run (or join a queued run of) the reconciler for `key`; returns when that run is done."""
        state = self._state(key)
        if state.pending is not None:
            await asyncio.shield(state.pending)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        state.pending = done
        try:
            async with state.lock:
                state.pending = None  # triggers from now on queue a fresh run
                await self._run(key, state)
        finally:
            if not done.done():
                done.set_result(None)
            self._drop_if_idle(key, state)

    def _drop_if_idle(self, key: Key, state: _KeyState) -> None:
        if state.idle and self._states.get(key) is state:
            del self._states[key]

    async def _run(self, key: Key, state: _KeyState) -> None:
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
            self.requeue(key, delay)
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

    def trigger(self, key: Key) -> None:
        """Fire and forget: reconcile `key` soon."""
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(self.reconcile(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def requeue(self, key: Key, delay: float) -> None:
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
        state.wakeup = loop.call_at(when, self._wake, key)

    def _wake(self, key: Key) -> None:
        state = self._states.get(key)
        if state is not None:
            state.wakeup = None
        self.trigger(key)

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

    def __len__(self) -> int:
        """How many keys the queue holds (in flight, queued, scheduled or backing off)."""
        return len(self._states)

    async def close(self) -> None:
        self._closed = True
        for state in self._states.values():
            if state.wakeup is not None:
                state.wakeup.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
