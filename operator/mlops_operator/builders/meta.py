"""Names, labels, annotations and owner references of every child object."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mlops_operator import contracts
from mlops_operator.api.base import Resource

MAX_NAME = 63
# Alias kept while reconcilers/dataset.py switches to contracts.LABEL_JOB_NAME_LEGACY (where every
# label and annotation is defined); remove it once nothing reads it from here.
LABEL_JOB_NAME_LEGACY = contracts.LABEL_JOB_NAME_LEGACY


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def hash8(value: Any) -> str:
    """A short, stable digest of any JSON-able value (dict key order does not matter)."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:8]


def child_name(base: str, *suffix: str, limit: int = MAX_NAME) -> str:
    """`<base>-<suffix…>`, cutting `base` (never the suffix) so the name fits `limit` characters.

    The suffix carries the identity (hash, tick), so two different children never share a name even
    when long bases are cut to the same prefix.
    """
    tail = "-".join(s for s in suffix if s)
    room = limit - len(tail) - (1 if tail else 0)
    if room < 1:
        raise ValueError(f"suffix {tail!r} leaves no room for a name within {limit} characters")
    head = base[:room].rstrip("-.") or base[:1]
    return f"{head}-{tail}" if tail else head


def labels(component: contracts.Component, instance: str, **extra: str) -> dict[str, str]:
    out = {
        contracts.LABEL_MANAGED_BY: contracts.MANAGED_BY,
        contracts.LABEL_NAME: "mlops-operator",
        contracts.LABEL_INSTANCE: instance,
        contracts.LABEL_COMPONENT: str(component),
    }
    out.update({k: v for k, v in extra.items() if v})
    return out


def label_value(value: str) -> str:
    """Label values are ≤63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in value)[:63]
    return cleaned.strip("-_.")


def owner_reference(owner: Resource) -> dict[str, Any]:
    """Controller reference: GC deletes the child with its owner, and blocks on it in foreground deletion."""
    return {
        "apiVersion": contracts.API_VERSION,
        "kind": type(owner).crd.kind,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def object_meta(
    name: str,
    owner: Resource,
    component: contracts.Component,
    *,
    extra_labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    kind_label = {
        "Dataset": contracts.LABEL_DATASET,
        "Model": contracts.LABEL_MODEL,
        "DriftMonitor": contracts.LABEL_DRIFT_MONITOR,
        "BatchScoring": contracts.LABEL_BATCH_SCORING,
    }[type(owner).crd.kind]
    meta: dict[str, Any] = {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(component, owner.name, **{kind_label: owner.name}, **(extra_labels or {})),
        "ownerReferences": [owner_reference(owner)],
    }
    if annotations:
        meta["annotations"] = dict(sorted(annotations.items()))
    return meta


def with_spec_hash(obj: dict[str, Any]) -> dict[str, Any]:
    """Stamp an object with the hash of everything but its status, so `ensure` can tell if it changed."""
    body = {k: v for k, v in obj.items() if k not in ("status",)}
    digest = hash8(body)
    annotations = dict(obj["metadata"].get("annotations") or {})
    annotations[contracts.ANNOTATION_SPEC_HASH] = digest
    obj["metadata"]["annotations"] = dict(sorted(annotations.items()))
    return obj
