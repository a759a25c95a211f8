"""Serving: approve, pick the version to serve, render it, watch the rollout, roll back on failure.

A version becomes `servingVersion` only when its rollout completes (kubectl's `rollout status`
rule); a failed rollout marks it RolledBack and the previous version is rendered again.
"""

from __future__ import annotations

from typing import Any

from mlops_operator import conditions as cond
from mlops_operator.api.v1alpha1.model import ApprovalPolicy, ModelVersion
from mlops_operator.api.v1alpha1.serving_periods import PeriodEnd
from mlops_operator.builders import serving as manifests
from mlops_operator.kube import DEPLOYMENT, HPA, PDB, POD, SERVICE, ForeignObject, Rejected
from mlops_operator.reconcilers import annotated, observe
from mlops_operator.reconcilers.context import normal, warning
from mlops_operator.reconcilers.model import approving, versions
from mlops_operator.reconcilers.model import rollout as staged
from mlops_operator.reconcilers.model.children import ModelRun

MAX_ROLLBACKS_PER_RUN = 3
REFUSALS = (cond.Reason.AWAITING_APPROVAL, cond.Reason.VERSION_NOT_FOUND, cond.Reason.VERSION_NOT_APPROVABLE)


def rolling_out(target: ModelVersion, detail: str = "") -> cond.State:
    return cond.State(cond.UNKNOWN, cond.Reason.ROLLING_OUT, detail or f"rolling out version {target.version}")


def apply_approvals(run: ModelRun) -> None:
    """The recorded approvals, a person's rejections, then Automatic approval of every validated version."""
    work = run.work
    approving.record(run)
    rejected, _ = annotated.rejected_versions(run.resource.annotations)  # what it ignored: model/reconciler.py
    for record in versions.reject_by_user(work.versions, rejected):
        run.note(warning(cond.Reason.REJECTED_BY_USER, f"version {record.version}: {record.message}"))
    if run.resource.spec.approval.policy == ApprovalPolicy.AUTOMATIC:
        for record in versions.auto_approve(work.versions, run.now):
            record.approved_by = "operator"
            run.note(normal("Approved", f"version {record.version} approved automatically"))


def choose(run: ModelRun) -> tuple[cond.State, ModelVersion | None]:
    """The Approved condition and the version that should serve (what serves now, when none is approved)."""
    model, work = run.resource, run.work
    policy = model.spec.approval.policy
    target, reason, message = versions.candidate(work.versions, policy, model.spec.approved_version)
    if target is None:
        status = cond.FALSE if reason in REFUSALS else cond.UNKNOWN
        return cond.State(status, reason, message), versions.find(work.versions, work.serving_version)
    refusal = approving.gate(run, target) if policy == ApprovalPolicy.MANUAL else None
    if refusal is not None:
        return refusal, versions.find(work.versions, work.serving_version)
    return cond.State(cond.TRUE, cond.Reason.APPROVED, f"version {target.version} approved ({policy})"), target


async def serve(run: ModelRun) -> tuple[cond.State, cond.State]:
    """The Approved and Serving conditions, after driving the serving objects toward the chosen version."""
    model, work, kube, ns = run.resource, run.work, run.ctx.kube, run.key.namespace
    apply_approvals(run)
    approval = cond.State(cond.UNKNOWN, cond.Reason.NO_VALIDATED_VERSION, "")
    for _ in range(MAX_ROLLBACKS_PER_RUN):
        approval, target = choose(run)
        if not model.spec.serving.enabled:
            await delete_serving(run)
            return approval, cond.State(cond.FALSE, cond.Reason.SERVING_DISABLED, "spec.serving.enabled is false")
        if target is None:
            if work.serving_version is None:
                await kube.delete_owned(DEPLOYMENT, ns, manifests.deployment_name(model), model.uid)
            nothing = approval.message or "no approved version yet"
            return approval, cond.State(cond.FALSE, cond.Reason.NOTHING_TO_SERVE, nothing)
        staging = await _canary_or_shadow(run, target)
        if staging is None:
            continue  # the candidate broke the analysis' bounds and was rolled back: choose again
        state = staging if isinstance(staging, cond.State) else await roll_out(run, target)
        if state is not None:
            if state.status == cond.TRUE:
                await staged.finish(run, target)
            return approval, state
        # the rollout of `target` failed and was rolled back: choose again
    in_a_row = "several versions failed their rollout in a row"
    return approval, cond.State(cond.FALSE, cond.Reason.ROLLOUT_FAILED, in_a_row)


async def _canary_or_shadow(run: ModelRun, target: ModelVersion) -> cond.State | staged.Outcome | None:
    """A Canary's or Shadow's state while it runs, PROMOTE when `target` is to replace the stable
    server now (always, with Replace), None when it was rolled back."""
    stable = staged.applies(run, target)
    if stable is None:
        return staged.Outcome.PROMOTE
    try:
        outcome = await staged.advance(run, target, stable)
    except (ForeignObject, Rejected) as exc:
        return run.refused(exc)
    if outcome is staged.Outcome.ROLLED_BACK:
        return None
    return outcome


async def ensure_serving(run: ModelRun, target: ModelVersion) -> tuple[str, dict[str, Any] | None]:
    """Create or update the Deployment, Service, HPA and PodDisruptionBudget of `target`: (the
    Deployment's action, it as read).

    Only objects this Model controls are patched: one of the same name that it does not control
    raises kube.ForeignObject and is left exactly as it is.
    """
    model, kube, ns = run.resource, run.ctx.kube, run.key.namespace
    deployment = manifests.deployment(model, target, run.ctx.settings)
    existing = await kube.get(DEPLOYMENT, ns, deployment["metadata"]["name"])
    await run.ctx.prepare_namespace(ns)
    await kube.ensure(manifests.service(model))
    action = await kube.ensure(deployment, existing)
    hpa = manifests.hpa(model)
    if hpa is not None:
        await kube.ensure(hpa)
    else:
        await kube.delete_owned(HPA, ns, manifests.deployment_name(model), model.uid)
    budget = manifests.disruption_budget(model)
    if budget is not None:
        await kube.ensure(budget)
    else:
        await kube.delete_owned(PDB, ns, manifests.deployment_name(model), model.uid)
    return action, existing


async def roll_out(run: ModelRun, target: ModelVersion) -> cond.State | None:
    """Ensure the serving objects for `target`; None when its rollout failed and it was rolled back."""
    model, work, kube, ns = run.resource, run.work, run.ctx.kube, run.key.namespace
    try:
        action, existing = await ensure_serving(run, target)
    except (ForeignObject, Rejected) as exc:
        return run.refused(exc)
    if action != "unchanged" or existing is None:
        return rolling_out(target)
    pods = observe.replica_set_pods(existing, staged.without_track(await kube.list(POD, ns, manifests.selector(model))))
    rollout = observe.rollout(existing, pods)
    if rollout.version != target.version:  # a stale read; the Deployment's own event brings the next one
        return rolling_out(target)
    if rollout.state == observe.RolloutState.COMPLETE:
        _mark_serving(run, target)
        return cond.State(cond.TRUE, cond.Reason.SERVING, f"version {target.version} serving: {rollout.message}")
    if rollout.state == observe.RolloutState.PROGRESSING:
        return rolling_out(target, f"version {target.version}: {rollout.message}")
    reason = rollout.reason or cond.Reason.ROLLOUT_FAILED
    if target.version == work.serving_version:  # nothing older to go back to from here
        return cond.State(cond.FALSE, reason, f"version {target.version}: {rollout.message}")
    versions.roll_back(target, reason, rollout.message, run.now)
    run.ctx.metrics.rollout_failures.labels(ns, model.name).inc()
    previous = f"; back to version {work.serving_version}" if work.serving_version else "; no previous version to serve"
    failed = f"version {target.version} failed its rollout ({rollout.reason}): {rollout.message}{previous}"
    run.note(warning(cond.Reason.ROLLED_BACK, failed))
    return None


def _mark_serving(run: ModelRun, target: ModelVersion) -> None:
    """The rollout of `target` completed: it serves, older versions retire."""
    work = run.work
    retired = versions.mark_serving(work.versions, target.version, run.now, approving.put_in_service_by(run, target))
    if work.serving_version == target.version:
        return
    work.serving_version = target.version
    work.endpoint = manifests.endpoint(run.resource)
    run.note(normal("Serving", f"version {target.version} is serving at {work.endpoint}"))
    for record in retired:
        run.note(normal("Retired", f"version {record.version} retired (replaced by {target.version})"))


async def delete_serving(run: ModelRun) -> None:
    """Remove the serving objects this Model controls (by name, with a uid precondition); others stay."""
    kube, ns, model = run.ctx.kube, run.key.namespace, run.resource
    await kube.delete_owned(PDB, ns, manifests.deployment_name(model), model.uid)
    await kube.delete_owned(HPA, ns, manifests.deployment_name(model), model.uid)
    await kube.delete_owned(DEPLOYMENT, ns, manifests.deployment_name(model), model.uid)
    await kube.delete_owned(SERVICE, ns, manifests.service_name(model), model.uid)
    await staged.remove_candidates(run)
    versions.end_serving(run.work.versions, run.now, PeriodEnd.SERVING_DISABLED)
    run.work.serving_version = None
    run.work.endpoint = None
