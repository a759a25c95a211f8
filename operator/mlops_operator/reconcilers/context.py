"""What every reconciler receives (settings, the API client, the clock, metrics) and what it returns."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import ValidationError

from mlops_operator import conditions as cond
from mlops_operator.api.base import CRModel
from mlops_operator.builders import namespace as prerequisites
from mlops_operator.kube import ForeignObject, Kind, Kube, Rejected
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
class ReconcileContext:
    """The operator's shared means, the same for every reconcile of every object."""

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
class ReconcileResult:
    """What the queue does after a reconcile: wake this object later, and reconcile others now."""

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


def refusal(exc: ForeignObject | Rejected) -> cond.State:
    """What a condition says about a child the operator could not create or update.

    The message stays the same while the cause does (no countdown in it), so re-asserting it
    patches nothing and posts no new Event.
    """
    if isinstance(exc, ForeignObject):
        return cond.State(cond.FALSE, cond.Reason.NAME_CONFLICT, exc.message)
    subject = exc.subject or "a request"
    message = (
        f"the API server refused {subject}: {exc.message}; it is sent again when the spec changes, "
        "or after a backoff (5 minutes, doubling to an hour)"
    )
    return cond.State(cond.FALSE, cond.Reason.CHILD_REJECTED, message)


async def record_invalid_spec(
    ctx: ReconcileContext,
    kind: Kind,
    body: dict[str, Any],
    message: str,
    now: datetime,
    status_model: type[CRModel],
    condition_types: tuple[str, ...],
    mark_failed: Callable[[Any], None],
    reason: str = cond.Reason.INVALID_SPEC,
) -> None:
    """A spec the operator refuses: each condition False with `reason` (InvalidSpec, ExceedsLimits,
    ChildRejected, NameConflict), the kind's failed phase (set by `mark_failed`), one status patch
    and a Warning Event, only when something changed."""
    generation = int(body["metadata"].get("generation") or 0)
    old = body.get("status") or {}
    try:
        work: Any = status_model.model_validate(old)
    except ValidationError:
        work = status_model()
    for type_ in condition_types:
        work.conditions = cond.set_condition(
            work.conditions, type_, cond.FALSE, reason, message, now=now, generation=generation
        )
    # refused until the spec (or the administrator's policy) changes, whatever the reason
    work.conditions = cond.with_kstatus(work.conditions, failed=True, now=now, generation=generation)
    mark_failed(work)
    work.observed_generation = generation
    patch = status_patch(old, work.dump())
    if patch:
        meta_ = body["metadata"]
        await ctx.kube.patch_status(kind, meta_["namespace"], meta_["name"], patch)
        await ctx.kube.event(body, "Warning", reason, message, now=now)


def status_patch(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch (RFC 7386) from `old` to `new`: changed keys, removed keys as explicit nulls, and
    for an object in both, its own patch (the API server merges objects, so a key dropped inside one,
    e.g. lastRefresh.outcome of a refresh that starts again, must be sent as null too)."""
    old = old or {}
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if before != value:
            both = isinstance(before, dict) and isinstance(value, dict)
            patch[key] = status_patch(before, value) if both else value
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
