"""Which child events can change a parent's decision: only those wake the parent.

A retrain used to cost about eight full Model reconciles, most of them woken by events that carry
nothing new for the parent: the DELETED of a finished Job (its TTL ran out; the parent recorded its
result long ago), the repeated MODIFIED of a complete Job, and metadata-only updates (annotations,
managedFields, kopf's own bookkeeping). A child's signature is what a parent reads from it: its
generation, whether it is being deleted, and its status; a finished Job's signature is only how it
finished. An event whose signature equals the last one seen for that child (by uid) is dropped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from mlops_operator import contracts

FINISHED = ("Complete", "Failed")
KOPF = f"{contracts.KOPF_PREFIX}/"  # kopf's own bookkeeping annotations (objects made by older releases)


def finished(job: Mapping[str, Any]) -> str | None:
    """How a Job finished (Complete or Failed), or None while it runs."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in FINISHED and condition.get("status") == "True":
            return str(condition["type"])
    return None


def signature(child: Mapping[str, Any]) -> str:
    """What a parent can read from `child`, as a short digest."""
    meta = child.get("metadata") or {}
    if child.get("kind") == "Job":
        outcome = finished(child)
        if outcome is not None:
            return f"finished:{outcome}"
    what = [meta.get("generation"), bool(meta.get("deletionTimestamp")), child.get("status")]
    return hashlib.blake2b(json.dumps(what, sort_keys=True, default=str).encode(), digest_size=12).hexdigest()


def essence(obj: Mapping[str, Any]) -> str:
    """What an object asks for, as a short digest: its generation (the spec), labels, annotations
    but kopf's own, and whether it is being deleted; not its status or resourceVersion."""
    meta = obj.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith(KOPF)}
    what = [meta.get("generation"), meta.get("labels") or {}, annotations, bool(meta.get("deletionTimestamp"))]
    return hashlib.blake2b(json.dumps(what, sort_keys=True, default=str).encode(), digest_size=12).hexdigest()


class ChildSignatures:
    """The last signature seen per child; forgets a child at its DELETED event."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def wakes_parent(self, event_type: str | None, child: Mapping[str, Any]) -> bool:
        """Whether this event (ADDED, MODIFIED, DELETED, or None for kopf's initial listing) can
        change what the parent decides."""
        uid = str((child.get("metadata") or {}).get("uid") or "")
        if event_type == "DELETED":
            self._seen.pop(uid, None)
            return not (child.get("kind") == "Job" and finished(child) is not None)
        if not uid:
            return True
        now = signature(child)
        if self._seen.get(uid) == now:
            return False
        self._seen[uid] = now
        return True

    def __len__(self) -> int:
        return len(self._seen)
