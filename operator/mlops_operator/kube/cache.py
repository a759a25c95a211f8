"""The objects the operator watches, as the watches deliver them: `Kube.get` and `Kube.list` read
them here instead of asking the API server.

Without it every reconcile read its object, its Dataset, its Jobs, its Deployment and its serving
Pods fresh (five requests for a Model that has nothing to do), and one
retrain cycle woke a Model about eight times. The watches already deliver every change of these
objects; kopf's index handlers (handlers/children.py) put each one here before any other handler
runs, and the event handlers bring deletions.

Correctness rules:
- **Trusted only once listed.** kopf runs no event or change handler before every indexed watch has
  listed its objects (its "operator indexed" readiness), so the first such handler call `trust()`s
  the cache. Before that, and for kinds or selectors it does not hold, `Kube` asks the API server.
- **Our own writes first.** `Kube` puts what the API server answers to its creates and patches here
  at once (write-through), so a run never reads an older state than the one the previous run wrote.
- **Never backwards.** An object is replaced only by a newer resourceVersion (a late watch event
  cannot undo a write-through), and an object the operator deleted is not brought back by a late
  event of the same uid.
- **A miss of a custom resource is asked** (an object created a moment ago may not have arrived);
  a miss of a Job, Deployment or serving Pod means it does not exist, as with kube.presence. A
  Job's pods are always asked for (Kube.job_pods): the cache cannot tell whether it holds them all.
- The resync's metadata listing of the custom resources drops any that are gone or older than
  listed (a watch that was down misses DELETED events).

What is kept of an object is what the reconcilers read: a Job without its pod template, a
Deployment without its pod spec, a Pod's containers and its status. It is kept as compact JSON
(orjson), deflated (zlib level 1), not as Python dicts: a Model with its status is ~4 KB of JSON,
~1.5 KB deflated, and ten times the JSON as nested dicts and strings; at 1,000 Models the cache of
3,000 custom resources and their children was most of the operator's memory. Every read inflates and
parses a fresh copy (~20 µs for a Model), which is also what the callers need (they may change what
they get) and is faster than the deep copy it replaces.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from mlops_operator import contracts
from mlops_operator.kube.kinds import DATASET, DEPLOYMENT, DRIFT_MONITOR, JOB, MODEL, POD, Kind

# kind → the labels a list must select for the cache to answer it (the watch selects managed-by
# server side, and the operator's own children always carry it; serving Pods are the only Pods watched)
LISTABLE: dict[Kind, dict[str, str]] = {
    JOB: {},
    DEPLOYMENT: {},
    POD: {contracts.LABEL_COMPONENT: str(contracts.Component.SERVE)},  # only serving Pods are watched
    MODEL: {},
    DATASET: {},
    DRIFT_MONITOR: {},
}
CUSTOM: tuple[Kind, ...] = (MODEL, DATASET, DRIFT_MONITOR)
_BY_KIND = {(k.api_version, k.kind): k for k in LISTABLE}
TOMBSTONES = 10_000
PACK_LEVEL = 1  # zlib's fastest: 2.2-2.8x smaller on these objects; higher levels add little
Name = tuple[str, str]  # (namespace, name)


def _version(obj: Mapping[str, Any]) -> int | None:
    raw = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(raw) if raw.isdigit() else None


def essentials(kind: Kind, obj: Mapping[str, Any]) -> dict[str, Any]:
    """What the reconcilers read of `obj` (see the module's docstring). Shares `obj`'s values: the
    cache serializes it at once, so nothing here is changed or kept."""
    kept = {k: v for k, v in obj.items() if k != "metadata"}
    kept["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    kept["apiVersion"], kept["kind"] = kind.api_version, kind.kind
    spec = kept.get("spec")
    if kind == JOB and isinstance(spec, Mapping):
        kept["spec"] = {k: v for k, v in spec.items() if k != "template"}
    elif kind == DEPLOYMENT and isinstance(spec, Mapping) and isinstance(spec.get("template"), Mapping):
        kept["spec"] = {**spec, "template": {"metadata": spec["template"].get("metadata") or {}}}
    elif kind == POD and isinstance(spec, Mapping):
        kept["spec"] = {"containers": spec.get("containers") or []}  # names, ports, limits are read
    return kept


def json_fallback(value: object) -> dict[str, Any]:
    """orjson's fallback for a mapping that is not a dict (kopf's views of a body)."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class _Held:
    """One cached object: what the cache's rules compare, and the object itself as deflated JSON."""

    uid: str
    version: int | None
    labels: dict[str, str]
    packed: bytes

    @classmethod
    def of(cls, kind: Kind, obj: Mapping[str, Any]) -> _Held:
        meta = obj.get("metadata") or {}
        labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
        packed = zlib.compress(orjson.dumps(essentials(kind, obj), default=json_fallback), PACK_LEVEL)
        return cls(str(meta.get("uid") or ""), _version(obj), labels, packed)

    def object(self) -> dict[str, Any]:
        loaded: dict[str, Any] = orjson.loads(zlib.decompress(self.packed))
        return loaded


class ObjectCache:
    def __init__(self) -> None:
        self._objects: dict[Kind, dict[Name, _Held]] = {kind: {} for kind in LISTABLE}
        self._deleted: OrderedDict[str, None] = OrderedDict()  # uids the operator deleted
        self._trusted = False

    def trust(self) -> None:
        self._trusted = True

    @property
    def trusted(self) -> bool:
        return self._trusted

    def holds(self, kind: Kind) -> bool:
        return self._trusted and kind in LISTABLE

    def answers(self, kind: Kind, labels: Mapping[str, str] | None) -> bool:
        """Whether a list of `kind` selecting `labels` can be answered from here."""
        required = LISTABLE.get(kind)
        return self._trusted and required is not None and required.items() <= dict(labels or {}).items()

    # --- reads ------------------------------------------------------------------------------
    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        found = self._objects.get(kind, {}).get((namespace, name))
        return None if found is None else found.object()

    def list(self, kind: Kind, namespace: str | None, labels: Mapping[str, str] | None) -> list[dict[str, Any]]:
        wanted = dict(labels or {}).items()
        return [
            held.object()
            for (ns, _), held in sorted(self._objects.get(kind, {}).items())
            if (namespace is None or ns == namespace) and wanted <= held.labels.items()
        ]

    # --- what the watches and our own writes say --------------------------------------------
    def observe(self, event_type: str | None, obj: Mapping[str, Any]) -> None:
        """A watch event (None: a listed object, or an index handler's call), or an object as the API
        server answered one of our writes."""
        kind = _BY_KIND.get((str(obj.get("apiVersion")), str(obj.get("kind"))))
        if kind is None:
            return
        meta = obj.get("metadata") or {}
        uid, key = str(meta.get("uid") or ""), (str(meta.get("namespace")), str(meta.get("name")))
        objects = self._objects[kind]
        current = objects.get(key)
        if event_type == "DELETED":
            self._deleted.pop(uid, None)
            if current is not None and current.uid == uid:
                del objects[key]
            return
        if uid in self._deleted:
            return  # a late event of an object the operator deleted
        if current is not None and current.uid == uid:
            have, new = current.version, _version(obj)
            if have is not None and new is not None and new <= have:
                # older than what is held (our own write's answer came first), or the same version
                # again: kopf relists every watch each time it reconnects (every few minutes), and
                # the index and event handlers both pass each event; serializing the same object
                # again would only churn the heap
                return
        objects[key] = _Held.of(kind, obj)

    def deleted(self, kind: Kind, namespace: str, name: str, uid: str | None) -> None:
        """The operator deleted (or found gone) this object: forget it, and its late events."""
        objects = self._objects.get(kind, {})
        found = objects.get((namespace, name))
        if found is not None and uid in (None, found.uid):
            del objects[(namespace, name)]  # not a successor of the same name
        if uid:
            self._deleted[uid] = None
            while len(self._deleted) > TOMBSTONES:
                self._deleted.popitem(last=False)

    def listed(self, kind: Kind, namespace: str | None, versions: Mapping[Name, str]) -> None:
        """A metadata listing of `kind` in `namespace` (None: all) says which exist and at which
        resourceVersion: drop what is gone or older (a watch that was down missed its events). An
        object that arrived after the listing is dropped too: for the custom resources (the only
        kinds listed so) a miss is asked of the API server, so this costs one GET, never a wrong answer."""
        objects = self._objects.get(kind, {})
        for key in [k for k in objects if namespace is None or k[0] == namespace]:
            listed, held = versions.get(key), objects[key].version
            if listed is None or (listed.isdigit() and held is not None and held < int(listed)):
                del objects[key]

    def __len__(self) -> int:
        return sum(len(objects) for objects in self._objects.values())
