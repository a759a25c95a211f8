"""The one reconcile skeleton every kind runs; each kind supplies only its own steps.

    1. fetch      the object, fresh; gone or being deleted → nothing to do
    2. validate   the typed model; a spec it rejects → InvalidSpec conditions and an Event, stop;
                  a spec beyond the administrator's ceilings (builders.limits.exceeds_ceilings,
                  MLOPS_MAX_*) → ExceedsLimits, stop: no child is created; an image, source or
                  store the administrator does not allow this namespace (builders.tenancy) →
                  ImageNotAllowed / SourceNotAllowed / SharedStoreCredentials, stop
    3. observe    ┐
    4. decide     ├ the kind's `steps(run)`: read children, decide (pure), act, summarise into `run.work`
    5. act        ┘
    6. record     one merge patch of status (only what changed), then the Events, then the actions
                  the steps deferred with `run.after_status`

Side effects come before the status patch that records them; `after_status` is for the few that
must follow it (wake the objects that depend on this one, start a Job that copies the new status).

A child the steps could not create because the API server refused it (kube.Rejected, 400/422) or
an object of its name is not this parent's (kube.ForeignObject) is not retried in a loop: the
kind's conditions say so (ChildRejected / NameConflict) with an Event, and the object is looked at
again when its spec changes, at the resync, or when the refused body's backoff ends. A kind can
handle these itself where it has more to record (the Model's training and serving do).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

from pydantic import ValidationError

from mlops_operator import conditions as cond
from mlops_operator.api.base import Resource, ResourceStatus
from mlops_operator.builders import limits, tenancy
from mlops_operator.kube import ForeignObject, Kind, Rejected
from mlops_operator.reconcilers.context import (
    EventSpec,
    Key,
    ReconcileContext,
    ReconcileResult,
    deleting,
    record_invalid_spec,
    refusal,
    status_patch,
    validation_message,
)
from mlops_operator.settings import Settings

R = TypeVar("R", bound=Resource)  # the kind's typed model: Dataset, Model, DriftMonitor
S = TypeVar("S", bound=ResourceStatus)  # its status model


@dataclass
class Run(Generic[R, S]):
    """One reconcile of one object: what it read, the status it is building, what it will report."""

    ctx: ReconcileContext
    key: Key
    body: dict[str, Any]  # as read: the status patch is computed against its status
    resource: R  # the typed model of `body`
    work: S  # a working copy of the status, written by the steps
    now: datetime
    events: list[EventSpec] = field(default_factory=list)
    requeue: float | None = None  # seconds until a level-based wake-up (schedule, cooldown end)
    also: tuple[Key, ...] = ()  # other objects to reconcile now
    patched: bool = False  # set in step 6: the status patch changed something
    deferred: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def note(self, *events: EventSpec) -> None:
        self.events.extend(events)

    def after_status(self, action: Callable[[], Awaitable[None]]) -> None:
        """Run `action` in step 6, once status records what this run did."""
        self.deferred.append(action)

    def wake_in(self, seconds: float) -> None:
        """Ask for a wake-up; the earliest one asked for wins."""
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)

    def refused(self, exc: ForeignObject | Rejected) -> cond.State:
        """For a step that handles a refused child itself: the state that says why (NameConflict,
        ChildRejected), a Warning Event, and a wake-up when the refused body may be sent again."""
        state = refusal(exc)
        self.note(EventSpec("Warning", state.reason, state.message))
        self.wake_in(retry_after(exc))
        return state


PREDECESSOR_WAIT = 10.0  # a deleted parent's child: the GC removes it within seconds
FOREIGN_WAIT = 300.0  # someone else's object: looked at again every 5 minutes (and at each resync)


def retry_after(exc: ForeignObject | Rejected) -> float:
    """When a refused child is worth another look (its own events do not say: Services are not watched)."""
    if isinstance(exc, Rejected):
        return exc.retry_in + 1
    return PREDECESSOR_WAIT if exc.predecessor else FOREIGN_WAIT


def ceilings(resource: Resource, settings: Settings) -> str:
    """What in the resource's spec goes beyond the administrator's ceilings, in words ("" when nothing)."""
    spec = getattr(resource, "spec", None)
    if not isinstance(spec, limits.Spec):
        return ""
    violations = limits.exceeds_ceilings(spec, settings)
    if not violations:
        return ""
    return "the spec exceeds the limits this operator allows: " + "; ".join(violations)


@dataclass(frozen=True)
class KindReconciler(Generic[R, S]):
    """How one kind is reconciled: its typed model and status, and its own steps."""

    kind: Kind
    resource: type[R]
    steps: Callable[[Run[R, S]], Awaitable[None]]  # 3. observe, 4. decide, 5. act (and summarise)
    invalid_conditions: tuple[str, ...]  # the conditions an invalid spec sets False/InvalidSpec

    @property
    def status(self) -> type[S]:
        return cast("type[S]", self.resource.status_model())

    async def reconcile(self, ctx: ReconcileContext, key: Key) -> ReconcileResult:
        # 1. fetch
        body = await ctx.kube.get(self.kind, key.namespace, key.name)
        if body is None:
            ctx.metrics.forget(key.kind, key.namespace, key.name)  # even if its DELETED event was missed
            return ReconcileResult()
        if deleting(body):
            return ReconcileResult()
        now = ctx.clock()
        # 2. validate
        try:
            resource = self.resource.model_validate(body)
        except ValidationError as exc:
            await self._invalid(ctx, body, validation_message(exc), now)
            return ReconcileResult()
        beyond = ceilings(resource, ctx.settings)
        if beyond:
            await self._invalid(ctx, body, beyond, now, cond.Reason.EXCEEDS_LIMITS)
            return ReconcileResult()
        refused = tenancy.refusal(resource, ctx.settings)
        if refused is not None:
            await self._invalid(ctx, body, refused.message, now, refused.reason)
            return ReconcileResult()
        run = Run(ctx, key, body, resource, self._working_status(resource), now)
        # 3.-5. the kind's own steps
        try:
            await self.steps(run)
        except (ForeignObject, Rejected) as exc:
            state = refusal(exc)
            await self._invalid(ctx, body, state.message, now, state.reason)
            return ReconcileResult(requeue_after=retry_after(exc))
        # 6. record
        await self._record(run)
        for action in run.deferred:
            await action()
        return ReconcileResult(requeue_after=run.requeue, also=run.also)

    def _working_status(self, resource: R) -> S:
        status = getattr(resource, "status", None)
        return (status if isinstance(status, self.status) else self.status()).model_copy(deep=True)

    async def _invalid(
        self,
        ctx: ReconcileContext,
        body: dict[str, Any],
        message: str,
        now: datetime,
        reason: str = cond.Reason.INVALID_SPEC,
    ) -> None:
        def mark_failed(work: S) -> None:
            work.mark_invalid_spec(message)

        await record_invalid_spec(
            ctx, self.kind, body, message, now, self.status, self.invalid_conditions, mark_failed, reason
        )

    async def _record(self, run: Run[R, S]) -> None:
        """Patch what changed in status, then post the Events."""
        patch = status_patch(run.body.get("status"), run.work.dump())
        if patch:
            await run.ctx.kube.patch_status(self.kind, run.key.namespace, run.key.name, patch)
            run.patched = True
        for event in run.events:
            await run.ctx.kube.event(run.body, event.type, event.reason, event.message, now=run.now)
