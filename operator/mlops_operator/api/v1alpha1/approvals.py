"""A Model's approval policy and the approvals the admission webhook records (issue 15, item 1)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from mlops_operator.api.base import CRModel, ShortText


class ApprovalPolicy(enum.StrEnum):
    AUTOMATIC = "Automatic"
    MANUAL = "Manual"


GroupName = Annotated[str, StringConstraints(min_length=1, max_length=253)]


class ApprovalSpec(CRModel):
    """Who approves a validated version for serving."""

    policy: ApprovalPolicy = ApprovalPolicy.AUTOMATIC
    """Automatic: every validated version is approved and the newest serves. Manual: the version in
    spec.approvedVersion serves (`kubectl mlops approve` sets it)."""
    required_approvers: int = Field(default=1, ge=1, le=5)
    """Manual: distinct people who must approve a version before it serves (four-eyes: 2). People are
    the API server's authenticated users, recorded by the operator's admission webhook; the same
    person twice counts once."""
    approver_group: GroupName | None = None
    """Manual: only approvals from members of this group (as the API server authenticates them) count."""
    separation_of_duties: bool = False
    """Manual: whoever triggered a version's training (created or edited the spec, or asked for the
    retrain) cannot approve it."""


class ApprovalAction(enum.StrEnum):
    APPROVE = "Approve"
    REJECT = "Reject"


class Approval(CRModel):
    """One person's approval or rejection of a version, as the API server authenticated them."""

    user: ShortText
    """The authenticated user name (AdmissionReview userInfo.username), never a client's claim."""
    groups: Annotated[list[ShortText], Field(max_length=32)] = Field(default_factory=list)
    """The user's groups at the time (at most 32)."""
    at: datetime
    """When the API server admitted it."""
    action: ApprovalAction = ApprovalAction.APPROVE
    """Approve or Reject."""
    counted: bool = True
    """Whether it counts toward approval.requiredApprovers (not: outside approverGroup, or the
    version's trigger under separationOfDuties)."""
    note: ShortText | None = None
    """Why it does not count, when it does not."""


__all__ = ["Approval", "ApprovalAction", "ApprovalPolicy", "ApprovalSpec"]
