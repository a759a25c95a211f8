"""Manual approval with recorded approvers: the webhook's records into the ledger, and the gate
(approval.requiredApprovers, approverGroup, separationOfDuties) a version passes before it serves."""

from __future__ import annotations

from mlops_operator import conditions as cond
from mlops_operator.api.v1alpha1.approvals import ApprovalAction
from mlops_operator.api.v1alpha1.model import ApprovalPolicy, ModelVersion, VersionState
from mlops_operator.reconcilers import approvals
from mlops_operator.reconcilers.context import normal
from mlops_operator.reconcilers.model import versions
from mlops_operator.reconcilers.model.children import ModelRun


def record(run: ModelRun) -> None:
    """Move the admission webhook's records into the ledger; an Event for each new one."""
    for version, approval in approvals.merge(run.work.versions, approvals.entries(run.resource.annotations)):
        groups = f" (groups: {', '.join(approval.groups)})" if approval.groups else ""
        approved = approval.action == ApprovalAction.APPROVE
        message = f"version {version.version} {'approved' if approved else 'rejected'} by {approval.user}{groups}"
        run.note(normal("ApprovalRecorded" if approved else "RejectionRecorded", message))


def gate(run: ModelRun, target: ModelVersion) -> cond.State | None:
    """Manual: approve `target` when enough distinct people did; else the Approved condition that
    says who did and who is missing. A version that serves already keeps serving."""
    spec, work = run.resource.spec.approval, run.work
    count = approvals.tally(target, spec)
    recorded = approvals.needs_records(spec) or bool(count.counted)
    if recorded and not count.enough and target.version != work.serving_version:
        return cond.State(cond.FALSE, cond.Reason.AWAITING_APPROVAL, count.message(target.version))
    if target.state in (VersionState.VALIDATED, VersionState.RETIRED):
        versions.approve(target, run.now, "Manual")
        target.approved_by = ", ".join(count.counted)[:256] if count.counted else approvals.LEGACY_BY
        run.note(normal("Approved", f"version {target.version} approved by {target.approved_by}"))
    return None


def put_in_service_by(run: ModelRun, target: ModelVersion) -> str:
    """Who a serving period names: the operator (Automatic), else who approved it last."""
    if run.resource.spec.approval.policy == ApprovalPolicy.AUTOMATIC:
        return "operator"
    return approvals.put_in_service_by(target)
