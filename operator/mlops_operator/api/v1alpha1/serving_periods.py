"""A version's serving periods: when it served, why that ended, and who put it in service."""

from __future__ import annotations

import enum
from datetime import datetime

from pydantic import Field

from mlops_operator.api.base import CRModel, ShortText


class PeriodEnd(enum.StrEnum):
    """Why a serving period ended."""

    SUPERSEDED = "Superseded"
    """A newer version's rollout completed."""
    ROLLED_BACK = "RolledBack"
    """An older version was put back in service (a rollback)."""
    REJECTED = "Rejected"
    """A person rejected it; the version that took over ends the period."""
    SERVING_DISABLED = "ServingDisabled"
    """spec.serving.enabled was set to false: the server was removed."""
    DELETED = "Deleted"
    """The Model was deleted; the period's end is when its re-created namesake restored the registry
    from the store (an upper bound: the deletion itself is not observed)."""


# Serving periods kept per version in status; older ones stay in the store's registry.json.
MAX_SERVING_PERIODS = 10


class ServingPeriod(CRModel):
    """One stretch of time during which a version served: appended when its rollout completes, closed
    (never rewritten) when another version takes over or serving stops."""

    start: datetime = Field(alias="from")
    """When its rollout completed (the version served from then on)."""
    to: datetime | None = None
    """When it stopped serving; absent while it serves. The instant `to` belongs to the next period."""
    ended_by: PeriodEnd | None = None
    """Superseded, RolledBack, Rejected, ServingDisabled or Deleted."""
    by: ShortText | None = None
    """Who put it in service: "operator" (approval policy Automatic), the authenticated user whose
    approval or rollback did (recorded by the admission webhook), or "spec.approvedVersion" when no
    approval was recorded (the webhook disabled)."""


__all__ = ["MAX_SERVING_PERIODS", "PeriodEnd", "ServingPeriod"]
