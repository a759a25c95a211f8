"""The operator's running state: one work queue over the three reconcilers, plus the resync loop.

Handlers only say "something about this object changed"; the controller decides nothing by itself
and never sleeps in a handler. The resync loop lists every custom resource each `resync_seconds`
and queues it: a level-based safety net for a missed event, without kopf timers (those would put a
finalizer on every object and block deletion while the operator is down).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from mlops_operator import contracts
from mlops_operator.kube import DATASET, DRIFT_MONITOR, MODEL, Kind
from mlops_operator.reconcilers import dataset, driftmonitor, model
from mlops_operator.reconcilers.context import Key, ReconcileContext, ReconcileResult
from mlops_operator.reconcilers.queue import WorkQueue

RECONCILERS: dict[str, Callable[[ReconcileContext, Key], Awaitable[ReconcileResult]]] = {
    "Dataset": dataset.reconcile,
    "Model": model.reconcile,
    "DriftMonitor": driftmonitor.reconcile,
}
KINDS: dict[str, Kind] = {"Dataset": DATASET, "Model": MODEL, "DriftMonitor": DRIFT_MONITOR}


def parent_of(namespace: str, labels: dict[str, str]) -> Key | None:
    """The custom resource a labelled child belongs to (drift Jobs also carry the model label)."""
    if labels.get(contracts.LABEL_MANAGED_BY) != contracts.MANAGED_BY:
        return None
    for label, kind in (
        (contracts.LABEL_DRIFT_MONITOR, "DriftMonitor"),
        (contracts.LABEL_MODEL, "Model"),
        (contracts.LABEL_DATASET, "Dataset"),
    ):
        if labels.get(label):
            return Key(kind, namespace, labels[label])
    return None


class Controller:
    def __init__(self, ctx: ReconcileContext) -> None:
        self.ctx = ctx
        self.queue = WorkQueue(self._dispatch, on_result=self._observe)
        self.last_event = time.monotonic()
        self.last_resync_ok: float | None = None
        self._resync_task: asyncio.Task[None] | None = None

    async def _dispatch(self, key: Key) -> ReconcileResult:
        return await RECONCILERS[key.kind](self.ctx, key)

    def _observe(self, key: Key, result: str, seconds: float) -> None:
        self.ctx.metrics.reconciles.labels(key.kind, result).inc()
        self.ctx.metrics.reconcile_seconds.labels(key.kind).observe(seconds)

    async def reconcile(self, key: Key) -> None:
        self.last_event = time.monotonic()
        await self.queue.reconcile(key)

    def child_changed(self, namespace: str, labels: dict[str, str]) -> None:
        self.last_event = time.monotonic()
        parent = parent_of(namespace, labels)
        if parent is not None:
            self.queue.trigger(parent)

    def deleted(self, key: Key) -> None:
        """The object is gone: drop its wake-ups and backoff, and its metric series.

        One last reconcile follows any run still in flight (runs of a key never overlap); it finds
        the object gone and removes what that run may have exported since.
        """
        self.queue.forget(key)
        self.ctx.metrics.forget(key.kind, key.namespace, key.name)
        self.queue.trigger(key)

    def start(self) -> None:
        self._resync_task = asyncio.get_running_loop().create_task(self._resync_forever())

    async def stop(self) -> None:
        if self._resync_task is not None:
            self._resync_task.cancel()
            await asyncio.gather(self._resync_task, return_exceptions=True)
        await self.queue.close()
        await asyncio.to_thread(self.ctx.kube.close)

    async def resync(self) -> int:
        """Queue every custom resource in the watched namespaces; returns how many."""
        namespaces: list[str | None] = list(self.ctx.settings.namespaces) or [None]
        count = 0
        for kind_name, kind in KINDS.items():
            for namespace in namespaces:
                for item in await self.ctx.kube.list(kind, namespace):
                    meta = item["metadata"]
                    self.queue.trigger(Key(kind_name, meta["namespace"], meta["name"]))
                    count += 1
        self.last_resync_ok = time.monotonic()
        self.ctx.metrics.last_resync.set(time.time())
        return count

    async def _resync_forever(self) -> None:
        interval = self.ctx.settings.resync_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                await self.resync()
            except Exception as exc:  # the API may be down for a while; the next round retries
                self.ctx.logger.warning("resync failed: %s", exc)

    def health(self) -> dict[str, float | None]:
        """For the liveness probe: raise when the API has been unreachable for 3 resync periods."""
        now = time.monotonic()
        since_resync = None if self.last_resync_ok is None else now - self.last_resync_ok
        limit = 3 * self.ctx.settings.resync_seconds + 30
        if since_resync is not None and since_resync > limit:
            raise RuntimeError(f"no successful resync for {since_resync:.0f}s (limit {limit:.0f}s)")
        return {"seconds_since_resync": since_resync, "seconds_since_event": now - self.last_event}
