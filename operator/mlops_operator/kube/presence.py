"""Which of the operator's own ServiceAccounts, claims, Services, HPAs and PDBs exist, as watched.

Without it, every reconcile asked the API server, and half of the answers were failures on purpose:
the workload ServiceAccounts and the store claim created again (409, then a GET) before every child,
an HPA or PDB that is not wanted deleted again (a GET, 404). That was 6 of a serving Model's 12
requests. The watches of these kinds (server-side label selector: managed-by=mlops-operator) feed
this cache; `Kube` then creates only on a miss and deletes only what is present, and its own writes
update the cache at once.

The cache is trusted only once `trust()` was called: the controller does at the first event handler
kopf runs (kopf runs none before every indexed watch, these included, has listed its objects, and
their index handlers have put each here: handlers/children.py), and at its first resync. Before
that, and for kinds it does not hold, `Kube` asks the API server as before. An object without our
label (made by an administrator in advance) is never cached: it is looked up every time, so its
deletion is seen.

What the cache keeps of an object is what `Kube.ensure` and `Kube.delete_child` read: its identity,
its owner references and its spec-hash annotation, as compact JSON (~0.5 KB, against ~2 KB of dicts
and strings: at 1,000 Models this cache holds ~4,000 objects).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from mlops_operator import contracts
from mlops_operator.kube.cache import json_fallback
from mlops_operator.kube.kinds import HPA, PDB, PVC, SERVICE, SERVICE_ACCOUNT, Kind

KINDS: tuple[Kind, ...] = (SERVICE_ACCOUNT, PVC, SERVICE, HPA, PDB)
_HELD = {(k.api_version, k.kind): k for k in KINDS}
ObjectId = tuple[str, str, str]  # (kind, namespace, name)


def _essentials(obj: Mapping[str, Any], kind: Kind) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    kept = {k: v for k, v in annotations.items() if k == contracts.ANNOTATION_SPEC_HASH}
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "labels": dict(meta.get("labels") or {}),
            "annotations": kept,
            "ownerReferences": [dict(ref) for ref in meta.get("ownerReferences") or []],
        },
    }


def _ours(obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(contracts.LABEL_MANAGED_BY) == contracts.MANAGED_BY)


class Presence:
    def __init__(self) -> None:
        self._objects: dict[ObjectId, bytes] = {}
        self._trusted = False

    def trust(self) -> None:
        self._trusted = True

    def holds(self, kind: Kind) -> bool:
        """Whether a miss for `kind` means the object does not exist."""
        return self._trusted and kind in KINDS

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as last seen (its essentials), or None."""
        found = self._objects.get((kind.kind, namespace, name))
        if found is None:
            return None
        loaded: dict[str, Any] = orjson.loads(found)  # a fresh copy: the caller may change it
        return loaded

    def observe(self, event_type: str | None, obj: Mapping[str, Any]) -> None:
        """A watch event (None: kopf's initial listing), or an object as our own write returned it."""
        kind = _HELD.get((str(obj.get("apiVersion")), str(obj.get("kind"))))
        if kind is None:
            return
        meta = obj.get("metadata") or {}
        object_id = (kind.kind, str(meta.get("namespace")), str(meta.get("name")))
        if event_type == "DELETED" or meta.get("deletionTimestamp") or not _ours(obj):
            self._objects.pop(object_id, None)
        else:
            self._objects[object_id] = orjson.dumps(_essentials(obj, kind), default=json_fallback)

    def forget(self, kind: Kind, namespace: str, name: str) -> None:
        self._objects.pop((kind.kind, namespace, name), None)

    def __len__(self) -> int:
        return len(self._objects)
