"""The operator's running state: one work queue over the three reconcilers, plus the resync loop.

Handlers only say "something about this object changed"; the controller decides nothing by itself
and never sleeps in a handler. The resync loop lists the metadata of every custom resource each
`resync_seconds` and queues those whose version moved unseen: a safety net for a missed event,
without kopf timers (those would put a finalizer on every object and block deletion while the
operator is down).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mlops_operator import contracts
from mlops_operator.kube import BATCH_SCORING, DATASET, DRIFT_MONITOR, MODEL, Kind, accounting, reads
from mlops_operator.reconcilers import batch, dataset, driftmonitor, model
from mlops_operator.reconcilers.context import Key, ReconcileContext, ReconcileResult
from mlops_operator.reconcilers.queue import Lane, WorkQueue
from mlops_operator.reconcilers.seen import SeenVersions
from mlops_operator.reconcilers.signatures import ChildSignatures, essence

RECONCILERS: dict[str, Callable[[ReconcileContext, Key], Awaitable[ReconcileResult]]] = {
    "Dataset": dataset.reconcile,
    "Model": model.reconcile,
    "DriftMonitor": driftmonitor.reconcile,
    "BatchScoring": batch.reconcile,
}
KINDS: dict[str, Kind] = {
    "Dataset": DATASET,
    "Model": MODEL,
    "DriftMonitor": DRIFT_MONITOR,
    "BatchScoring": BATCH_SCORING,
}
log = logging.getLogger("mlops_operator.requests")


def parent_of(namespace: str, labels: dict[str, str]) -> Key | None:
    """The custom resource a labelled child belongs to (drift Jobs also carry the model label)."""
    if labels.get(contracts.LABEL_MANAGED_BY) != contracts.MANAGED_BY:
        return None
    for label, kind in (
        (contracts.LABEL_BATCH_SCORING, "BatchScoring"),
        (contracts.LABEL_DRIFT_MONITOR, "DriftMonitor"),
        (contracts.LABEL_MODEL, "Model"),
        (contracts.LABEL_DATASET, "Dataset"),
    ):
        if labels.get(label):
            return Key(kind, namespace, labels[label])
    return None


def serving(labels: Mapping[str, str]) -> bool:
    return labels.get(contracts.LABEL_COMPONENT) == contracts.Component.SERVE


class Controller:
    def __init__(self, ctx: ReconcileContext) -> None:
        self.ctx = ctx
        self.queue = WorkQueue(self._dispatch, on_result=self._observe)
        ctx.metrics.watch_queue(lambda: {lane.name.lower(): count for lane, count in self.queue.waiting().items()})
        self.last_event = time.monotonic()
        self.last_resync_ok: float | None = None
        self._resync_task: asyncio.Task[None] | None = None
        self.child_signatures = ChildSignatures()
        self.versions = SeenVersions()  # what each key's last good run read
        self.last_requests: dict[Key, accounting.Requests] = {}  # the API requests of each key's last run
        self.essences: dict[Key, str] = {}  # what each object last asked for (signatures.essence)

    async def _dispatch(self, key: Key) -> ReconcileResult:
        started = time.monotonic()
        with reads.recording() as versions, accounting.counting() as requests:
            try:
                result = await RECONCILERS[key.kind](self.ctx, key)
            except BaseException:
                self.versions.forget(key)  # the next resync looks again
                raise
            finally:
                self.last_requests[key] = requests
                if log.isEnabledFor(logging.DEBUG):
                    waited, worked = self.queue.waited(key), time.monotonic() - started
                    what = {"requests": dict(requests), "queued": waited, "worked": worked}
                    log.debug(
                        "%s: queued %.3fs, worked %.3fs, requests %s",
                        key,
                        waited,
                        worked,
                        accounting.describe(requests),
                        extra={"reconcile": what},
                    )
        for reader in self.versions.record(key, versions):
            self.queue.trigger(reader, Lane.HIGH)  # it read an older version of this object
        return result

    def _observe(self, key: Key, result: str, seconds: float) -> None:
        self.ctx.metrics.reconciles.labels(key.kind, result).inc()
        self.ctx.metrics.reconcile_seconds.labels(key.kind).observe(seconds)

    async def reconcile(self, key: Key) -> None:
        """Reconcile `key` now and return when that run is done."""
        self.last_event = time.monotonic()
        await self.queue.reconcile(key)

    def changed(self, key: Key, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A watch event of the object itself: a change of what it asks for (spec, labels,
        annotations, deletion) is someone waiting (HIGH); an object listed at start (a restart's
        catch-up) or created is NORMAL, so it cannot delay an update. Its own status changing (our
        patch coming back) and kopf's listing again after a lost watch change nothing: no run."""
        asks = essence(body)
        if self.essences.get(key) == asks:
            return
        known, self.essences[key] = key in self.essences, asks
        self.last_event = time.monotonic()
        self.queue.trigger(key, Lane.HIGH if known or event_type == "MODIFIED" else Lane.NORMAL)

    def child_changed(
        self,
        namespace: str,
        labels: dict[str, str],
        event_type: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        """A child's event wakes its parent (HIGH) when it can change the parent's decision."""
        self.last_event = time.monotonic()
        if body is not None:
            self.listed()
            self.ctx.kube.cache.observe(event_type, body)
        parent = parent_of(namespace, labels)
        if parent is None or (body is not None and body.get("kind") == "Pod" and not serving(labels)):
            return  # a Job's pod: its Job's own events wake the parent
        if body is not None and not self.child_signatures.wakes_parent(event_type, body):
            return
        self.queue.trigger(parent, Lane.HIGH)

    def indexed(self, body: Mapping[str, Any]) -> None:
        """kopf's index handler saw `body` (listed, added or modified): the caches hold it now."""
        self.ctx.kube.cache.observe(None, body)
        self.ctx.kube.presence.observe(None, body)

    def listed(self) -> None:
        """An event or change handler runs: kopf runs none before every indexed watch has listed its
        objects (and the index handlers have put each into the caches), so the caches are complete."""
        self.ctx.kube.cache.trust()
        self.ctx.kube.presence.trust()

    def resource_event(self, key: Key, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Any watch event of a custom resource: the cache learns it; DELETED forgets the object,
        anything else may be a change to reconcile (`changed`)."""
        self.listed()
        self.ctx.kube.cache.observe(event_type, body)
        if event_type == "DELETED":
            self.deleted(key)
        else:
            self.changed(key, event_type, body)

    def owned_changed(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A ServiceAccount, claim, Service, HPA or PDB of ours changed: only the presence cache learns it."""
        self.listed()
        self.ctx.kube.presence.observe(event_type, body)

    def deleted(self, key: Key) -> None:
        """The object is gone: drop its wake-ups and backoff, and its metric series.

        One last reconcile follows any run still in flight (runs of a key never overlap); it finds
        the object gone and removes what that run may have exported since.
        """
        self.queue.forget(key)
        self.versions.forget(key)
        self.last_requests.pop(key, None)
        self.essences.pop(key, None)
        self.ctx.metrics.forget(key.kind, key.namespace, key.name)
        self.queue.trigger(key)

    def start(self) -> None:
        self._resync_task = asyncio.get_running_loop().create_task(self._resync_forever())

    async def stop(self) -> None:
        if self._resync_task is not None:
            self._resync_task.cancel()
            await asyncio.gather(self._resync_task, return_exceptions=True)
        await self.queue.close()
        sent = getattr(self.ctx.kube, "requests", None)  # a test's stand-in may not count
        if sent is not None:
            log.info("API requests the reconcilers sent: %s", accounting.describe(sent))
        await asyncio.to_thread(self.ctx.kube.close)

    async def resync(self) -> int:
        """Queue (LOW) every custom resource whose own version, or a dependency's, moved since its
        last good run read it, or that has not run yet; returns how many.

        One metadata-only list per kind and namespace: an unchanged object costs no reconcile and no
        request of its own, so the idle traffic does not grow with the number of objects.
        """
        namespaces: list[str | None] = list(self.ctx.settings.namespaces) or [None]
        now: reads.Versions = {}
        for kind_name, kind in KINDS.items():
            for namespace in namespaces:
                listed = {
                    (meta["namespace"], meta["name"]): str(meta.get("resourceVersion") or "")
                    for meta in await self.ctx.kube.list_metadata(kind, namespace)
                }
                self.ctx.kube.cache.listed(kind, namespace, listed)  # what a watch that was down missed
                now.update({Key(kind_name, *name): version for name, version in listed.items()})
        moved = self.versions.moved(now)
        for key in moved:
            self.queue.trigger(key, Lane.LOW)
        self.last_resync_ok = time.monotonic()
        self.ctx.metrics.last_resync.set(time.time())
        self.ctx.kube.presence.trust()  # the watches, started with the operator, have listed everything
        self.ctx.kube.cache.trust()
        return len(moved)

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
