"""approve, reject, retrain, rollback: which version, whether it is allowed, and the merge patch.

Pure: a parsed Model in, a patch (or a PluginError saying why not) out. The operator honours
each patch; the contract is in the package's docstring.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mlops_operator import contracts
from mlops_operator.api.v1alpha1 import Model
from mlops_operator.api.v1alpha1.model import ApprovalPolicy, ModelVersion, VersionState
from mlops_operator.plugin.resources import PluginError, rfc3339

MAX_REASON_LENGTH = 200

# Versions that hold a trained, validated artifact and so can be served again.
SERVABLE_STATES = frozenset(
    {
        VersionState.VALIDATED,
        VersionState.APPROVED,
        VersionState.SERVING,
        VersionState.RETIRED,
        VersionState.ROLLED_BACK,
    }
)


def with_rejection(annotations: Mapping[str, str], version: int, reason: str) -> str:
    """The annotation value after rejecting one more version (sorted, compact, deterministic)."""
    current = contracts.rejected_versions(annotations)
    current[version] = reason
    return json.dumps({str(k): current[k] for k in sorted(current)}, separators=(",", ":"))


def clean_reason(reason: str) -> str:
    """One line, bounded: the reason ends up in an annotation, status and Events."""
    flat = " ".join(reason.split())
    if not flat:
        raise PluginError("--reason must not be empty")
    return flat[:MAX_REASON_LENGTH]


def retrain_annotation(now: datetime, reason: str) -> str:
    return f"{rfc3339(now)};{clean_reason(reason)}"


def find_version(model: Model, version: int) -> ModelVersion:
    for v in model.status.versions if model.status else []:
        if v.version == version:
            return v
    known = ", ".join(str(v.version) for v in (model.status.versions if model.status else [])) or "none yet"
    raise PluginError(f"model {model.name} has no version {version} (versions: {known})")


def check_approvable(model: Model, version: int) -> ModelVersion:
    if model.spec.approval.policy == ApprovalPolicy.AUTOMATIC:
        raise PluginError(
            f"model {model.name} has approval policy Automatic: it approves its own validated versions and "
            f"ignores spec.approvedVersion. To pin version {version}, run "
            f"`kubectl mlops rollback {model.name} --to {version}` (switches it to Manual)."
        )
    target = find_version(model, version)
    if version in contracts.rejected_versions(model.annotations):
        raise PluginError(f"version {version} of model {model.name} was rejected; it cannot be approved")
    if target.state not in SERVABLE_STATES:
        why = f": {target.message}" if target.message else ""
        raise PluginError(
            f"version {version} of model {model.name} is {target.state}{why}; only validated versions can be approved"
        )
    return target


def check_rejectable(model: Model, version: int) -> ModelVersion:
    target = find_version(model, version)
    serving = model.status.serving_version if model.status else None
    if version == serving:
        raise PluginError(
            f"version {version} of model {model.name} is serving; "
            f"roll back first: `kubectl mlops rollback {model.name}`"
        )
    if model.spec.approved_version == version:
        raise PluginError(
            f"version {version} is model {model.name}'s spec.approvedVersion; approve another version first"
        )
    return target


def rollback_target(model: Model, requested: int | None) -> int:
    """The version to serve instead of the current one.

    Without --to: the most recently served version before the current one that is neither failed
    nor rejected; that is what "undo the last rollout" means.
    """
    serving = model.status.serving_version if model.status else None
    rejected = contracts.rejected_versions(model.annotations)
    if requested is not None:
        target = find_version(model, requested)
        if requested == serving:
            raise PluginError(f"model {model.name} already serves version {requested}")
        if requested in rejected or target.state not in SERVABLE_STATES:
            raise PluginError(f"version {requested} of model {model.name} is {target.state}; it cannot be served")
        return requested
    if serving is None:
        raise PluginError(f"model {model.name} serves no version yet: nothing to roll back")
    served_before = [
        v
        for v in (model.status.versions if model.status else [])
        if v.serving_at is not None
        and v.version != serving
        and v.version not in rejected
        and v.state in SERVABLE_STATES
    ]
    if not served_before:
        raise PluginError(f"model {model.name} has served no other version; name one with --to VERSION")
    return max(served_before, key=lambda v: (v.serving_at or datetime.min.replace(tzinfo=UTC), v.version)).version


# --- the patches ---------------------------------------------------------------------------------


def approve_patch(version: int) -> dict[str, Any]:
    """Serve `version`, and count this person's approval of it even when spec.approvedVersion names it
    already (the second of two approvers): the admission webhook records it and drops the annotation."""
    return {
        "spec": {"approvedVersion": version},
        "metadata": {"annotations": {contracts.ANNOTATION_APPROVE: str(version)}},
    }


def reject_patch(annotations: Mapping[str, str], version: int, reason: str) -> dict[str, Any]:
    value = with_rejection(annotations, version, reason)
    return {"metadata": {"annotations": {contracts.ANNOTATION_REJECTED_VERSIONS: value}}}


def retrain_patch(value: str) -> dict[str, Any]:
    return {"metadata": {"annotations": {contracts.ANNOTATION_RETRAIN_REQUESTED: value}}}


def rollback_patch(model: Model, target: int) -> dict[str, Any]:
    """Serve `target`; an Automatic model becomes Manual in the same patch, or its next retrain undoes it."""
    spec: dict[str, Any] = {"approvedVersion": target}
    if model.spec.approval.policy == ApprovalPolicy.AUTOMATIC:
        spec["approval"] = {"policy": ApprovalPolicy.MANUAL.value}
    return {"spec": spec}
