"""What every reconciler receives: settings, the API client, the clock, metrics, and its outcome type."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import ValidationError

from mlops_operator.builders import namespace as prerequisites
from mlops_operator.kube import Kube
from mlops_operator.metrics import Metrics
from mlops_operator.settings import Settings


class Key(NamedTuple):
    kind: str  # "Dataset" | "Model" | "DriftMonitor"
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def utcnow() -> datetime:
    # Whole seconds: status round-trips through the API server without spurious diffs.
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Context:
    settings: Settings
    kube: Kube
    metrics: Metrics
    clock: Callable[[], datetime] = utcnow
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("mlops_operator"))

    async def prepare_namespace(self, namespace: str) -> None:
        """Before every child is created: the workload ServiceAccounts and the store claim exist.

        Not cached per process: a namespace deleted and recreated under the same name would
        otherwise lose them for good (its Jobs then fail with "serviceaccount not found").
        """
        for obj in prerequisites.prerequisites(namespace, self.settings):
            await self.kube.create_or_adopt(obj)


@dataclass(frozen=True)
class Outcome:
    requeue_after: float | None = None  # seconds; a level-based wake-up (schedule, cooldown end)
    also: tuple[Key, ...] = ()  # other objects whose state depends on this one


@dataclass(frozen=True)
class EventSpec:
    type: str  # Normal | Warning
    reason: str
    message: str


def normal(reason: str, message: str) -> EventSpec:
    return EventSpec("Normal", reason, message)


def warning(reason: str, message: str) -> EventSpec:
    return EventSpec("Warning", reason, message)


def status_patch(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch from `old` to `new` at the top level; removed keys become explicit nulls."""
    old = old or {}
    patch: dict[str, Any] = {k: v for k, v in new.items() if old.get(k) != v}
    patch.update({k: None for k in old if k not in new})
    return patch


def deleting(body: dict[str, Any]) -> bool:
    return bool(body.get("metadata", {}).get("deletionTimestamp"))


def validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg')}")
    return "invalid spec: " + "; ".join(parts)
