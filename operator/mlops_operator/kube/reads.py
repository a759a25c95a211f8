"""The resourceVersions of the custom resources one reconcile read, recorded as it reads them.

The resync compares them with a metadata-only listing: an object whose own version and every
dependency's version (its Dataset, its Model) are where its last run saw them is not reconciled
again; the watch already told the operator everything about it. Recording happens in `Kube.get` and
`Kube.patch` while `recording()` is active; tasks started inside (asyncio.gather) share the record.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from mlops_operator import contracts
from mlops_operator.kube.kinds import Kind

ObjectId = tuple[str, str, str]  # (kind, namespace, name); the reconcilers' Key is such a tuple
Versions = dict[ObjectId, str]  # "" for an object that was absent when read

_current: ContextVar[Versions | None] = ContextVar("mlops_kube_reads", default=None)


@contextmanager
def recording() -> Iterator[Versions]:
    """Record, into the dict it yields, the version of every custom resource read or patched inside."""
    versions: Versions = {}
    token = _current.set(versions)
    try:
        yield versions
    finally:
        _current.reset(token)


def note(kind: Kind, namespace: str, name: str, body: dict[str, Any] | None) -> None:
    """`body` as the API server returned it (None: absent). Only the custom resources count."""
    versions = _current.get()
    if versions is None or kind.group != contracts.GROUP:
        return
    versions[(kind.kind, namespace, name)] = str(((body or {}).get("metadata") or {}).get("resourceVersion") or "")


def moved(last_run: Versions | None, now: Versions) -> bool:
    """Whether anything `last_run` read has a different version `now` (never run: True)."""
    if last_run is None:
        return True
    return any(now.get(obj, "") != version for obj, version in last_run.items())
