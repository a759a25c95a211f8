"""Release events: a Model's registry transitions sent as signed CloudEvents to HTTP sinks.

The spec (`spec.events`), the bookkeeping in status (`status.events`), and the plan and result of
the notify Job that delivers a batch of events (docs/governance.md, "Release events").
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from mlops_operator.api.base import CRModel, Message, SecretKeyReference, ShortText

# Bounds of the status bookkeeping: settled ids, recent deliveries, dead letters.
MAX_SETTLED_IDS = 1000  # 100 versions (spec.maxVersions at most) x ~10 transitions
MAX_RECENT_DELIVERED = 50
MAX_DEAD_LETTERS = 20
EventId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
SinkUrl = Annotated[str, StringConstraints(min_length=8, max_length=2048, pattern=r"^[hH][tT][tT][pP][sS]?://\S+$")]


class EventType(enum.StrEnum):
    """A registry transition; the CloudEvent type is `dev.mlops.model.version.<value>`."""

    TRAINED = "trained"
    REJECTED = "rejected"
    AWAITING_APPROVAL = "awaitingApproval"
    APPROVED = "approved"
    SERVING = "serving"
    ROLLED_BACK = "rolledBack"
    RETIRED = "retired"


class EventSink(CRModel):
    """One receiver: its URL (https unless the operator allows http) and the key that signs for it."""

    url: SinkUrl
    """Where the events are POSTed (CloudEvents structured mode)."""
    secret_ref: SecretKeyReference
    """The HMAC-SHA256 key: mounted into the notify pod only, never read by the operator."""


class EventsSpec(CRModel):
    """Send this Model's registry transitions as CloudEvents."""

    sinks: Annotated[list[EventSink], Field(min_length=1, max_length=5)]
    """Receivers; every event goes to each of them."""
    types: Annotated[list[EventType], Field(max_length=7)] = Field(default_factory=list)
    """The transitions to send; empty: all of them."""


class DeadLetter(CRModel):
    """An event a sink did not take after every retry."""

    id: EventId
    """The CloudEvent id."""
    type: ShortText
    """The CloudEvent type."""
    version: int
    """The Model version it is about."""
    sink: int
    """The index of the sink in spec.events.sinks."""
    reason: ShortText
    """Why the last attempt failed (WebhookUnreachable, WebhookRejected, WebhookTimeout, ...)."""
    attempts: int
    """Delivery attempts made."""
    error: Message | None = None
    """The last error, without the URL or the key."""
    at: datetime
    """When the operator recorded it."""


class EventsStatus(CRModel):
    """What was sent, and what never will be."""

    since: datetime | None = None
    """When events were first enabled: the transitions the ledger held then were settled unsent."""
    settled: Annotated[list[EventId], Field(max_length=MAX_SETTLED_IDS)] = Field(default_factory=list)
    """Ids of the ledger's transitions that are settled (delivered, dead-lettered or older than
    `since`): never sent again."""
    job: ShortText | None = None
    """The latest notify Job."""
    delivered: int = 0
    """Events delivered to every sink since events were enabled."""
    recent: Annotated[list[EventId], Field(max_length=MAX_RECENT_DELIVERED)] = Field(default_factory=list)
    """Ids of the newest delivered events, newest last."""
    dead_letters: Annotated[list[DeadLetter], Field(max_length=MAX_DEAD_LETTERS)] = Field(default_factory=list)
    """Events that a sink did not take after every retry, newest last."""
    message: Message | None = None
    """Why the latest notify Job failed as a whole, if it did."""


class EventsPlan(CRModel):
    """Deliver `events` (CloudEvents, as JSON objects) to every sink.

    Sink i's HMAC key is the file `sink-<i>` in the pod's key directory (a mounted Secret).
    """

    events: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=100)]
    sinks: Annotated[list[SinkUrl], Field(min_length=1, max_length=5)]
    allow_http: bool = False
    allow_private: bool = False
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    attempts: int = Field(default=4, ge=1, le=10)
    backoff_seconds: float = Field(default=1.0, ge=0, le=60)
    """The first pause between attempts; it doubles after each."""


class SinkFailure(CRModel):
    """A sink that did not take the batch's event `first_failed` (an index into the plan's events)
    after `attempts` tries, nor, therefore, any later one: deliveries to a sink stop at its first
    exhausted event, so its failures are always the batch's tail (and fit a termination message)."""

    sink: int
    first_failed: int
    attempts: int
    status: int | None = None
    reason: str
    error: str | None = None


class EventsResult(CRModel):
    """How many events the batch held and which sinks failed from which event on. `ok` is False only
    when the batch could not be attempted (a bad plan, a key not mounted): then `reason` and `error`."""

    ok: bool = True
    reason: str | None = None
    error: str | None = None
    events: int = 0
    failures: list[SinkFailure] = Field(default_factory=list)


__all__ = [
    "DeadLetter",
    "EventSink",
    "EventType",
    "EventsPlan",
    "EventsResult",
    "EventsSpec",
    "EventsStatus",
    "SinkFailure",
]
