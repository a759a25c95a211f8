"""The ledger of a Model's versions: pure transitions over `status.versions`, and its rebuild.

(The store's `registry.json` is a copy of this ledger, written by the mirror Job: `mirror.py`.)

States: Training → Failed | Validated | Rejected; Validated → Approved → Serving → Retired;
Approved/Serving → RolledBack when its rollout fails. Beside the state, each version keeps its
serving periods (from, to, why it ended, by whom), appended and closed, never rewritten, so "what
served at time T" has an answer (api/history.py). The functions work on a working copy of the
status that the reconciler owns; the clock is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from mlops_operator.api import history
from mlops_operator.api.results import TrainResult
from mlops_operator.api.v1alpha1.model import (
    ApprovalPolicy,
    GateVerdict,
    ModelVersion,
    VersionState,
)
from mlops_operator.api.v1alpha1.serving_periods import PeriodEnd, ServingPeriod
from mlops_operator.conditions import Reason

SERVABLE = frozenset({VersionState.APPROVED, VersionState.SERVING})
# States from which a person may (re-)approve a version with spec.approvedVersion.
APPROVABLE = frozenset({VersionState.VALIDATED, VersionState.APPROVED, VersionState.SERVING, VersionState.RETIRED})
USER_REJECTABLE = APPROVABLE | {VersionState.ROLLED_BACK}


def find(versions: Iterable[ModelVersion], version: int | None) -> ModelVersion | None:
    return next((v for v in versions if v.version == version), None) if version is not None else None


def latest(versions: Iterable[ModelVersion], *, finished: bool = False) -> ModelVersion | None:
    """The newest version; with `finished`, the newest that trained to a result (not Training/Failed)."""
    candidates = [v for v in versions if not finished or v.state not in (VersionState.TRAINING, VersionState.FAILED)]
    return max(candidates, key=lambda v: v.version, default=None)


def highest_recorded(versions: Iterable[ModelVersion], latest_version: int | None) -> int:
    """The highest version number the status ever recorded (pruned ones count through `latestVersion`)."""
    return max([latest_version or 0, *(v.version for v in versions)])


def next_version(versions: Iterable[ModelVersion], job_versions: Iterable[int], latest: int | None) -> int:
    """One above every number ever used: in status, on existing Jobs' labels, and `latestVersion`.

    Jobs count because a Job may exist whose version the status never recorded (a crash between
    create and status patch): its number must not be handed out twice.
    """
    used = [v.version for v in versions] + list(job_versions) + ([latest] if latest else [])
    return max(used, default=0) + 1


def start(
    versions: list[ModelVersion],
    *,
    version: int,
    job: str,
    trigger: str,
    dataset_version: str,
    estimator: str | None,
    params: dict[str, Any],
    now: datetime,
) -> ModelVersion:
    record = find(versions, version)
    if record is None:
        record = ModelVersion(
            version=version,
            state=VersionState.TRAINING,
            trigger=trigger[:256],
            dataset_version=dataset_version,
            estimator=estimator,
            params=params,
            job=job,
            created_at=now,
        )
        versions.append(record)
        versions.sort(key=lambda v: v.version)
    return record


def fail(record: ModelVersion, reason: str, message: str, now: datetime) -> None:
    record.state = VersionState.FAILED
    record.reason = reason
    record.message = message[:1024]
    record.trained_at = record.trained_at or now


def trained(record: ModelVersion, result: TrainResult, verdict: GateVerdict, now: datetime) -> None:
    record.metrics = dict(result.metrics)
    record.artifact_uri = result.artifact_uri
    record.sha256 = result.sha256
    record.trained_at = now
    record.gate = verdict
    record.state = VersionState.VALIDATED if verdict.passed else VersionState.REJECTED
    record.reason = verdict.reason
    record.message = verdict.message[:1024]


def reject_by_user(versions: Iterable[ModelVersion], rejections: Mapping[int, str]) -> list[ModelVersion]:
    """Mark every trained version a person rejected (mlops.dev/rejected-versions) as Rejected.

    A rejected version is never approved or served; if it serves now, the next candidate takes over.
    Training and Failed versions are left alone until they settle.
    """
    changed = []
    for record in versions:
        if record.version in rejections and record.state in USER_REJECTABLE:
            record.state = VersionState.REJECTED
            record.reason = Reason.REJECTED_BY_USER
            record.message = f"rejected by a person: {rejections[record.version]}"[:1024]
            changed.append(record)
    return changed


def approve(record: ModelVersion, now: datetime, how: str) -> None:
    if record.state == VersionState.VALIDATED or (record.state == VersionState.RETIRED and how == "Manual"):
        record.state = VersionState.APPROVED
        record.approved_at = now
        record.reason = Reason.APPROVED
        record.message = f"approved ({how})"


def auto_approve(versions: Iterable[ModelVersion], now: datetime) -> list[ModelVersion]:
    approved = [v for v in versions if v.state == VersionState.VALIDATED]
    for record in approved:
        approve(record, now, "Automatic")
    return approved


def candidate(
    versions: list[ModelVersion], policy: str, approved_version: int | None
) -> tuple[ModelVersion | None, str, str]:
    """The version that should serve, and why not when there is none.

    Automatic: the newest Approved/Serving version. Manual: exactly `spec.approvedVersion`, if it
    passed validation (a Rejected, Failed or RolledBack version is refused with the reason).
    """
    if policy == ApprovalPolicy.AUTOMATIC:
        servable = [v for v in versions if v.state in SERVABLE and v.artifact_uri and v.sha256]
        if servable:
            return max(servable, key=lambda v: v.version), Reason.APPROVED, ""
        return None, Reason.NO_VALIDATED_VERSION, "no version has passed validation yet"
    if approved_version is None:
        waiting = [v.version for v in versions if v.state == VersionState.VALIDATED]
        if waiting:
            newest = max(waiting)
            return (
                None,
                Reason.AWAITING_APPROVAL,
                f"version {newest} passed validation; set spec.approvedVersion: {newest} to serve it",
            )
        return None, Reason.NO_VALIDATED_VERSION, "no version has passed validation yet"
    record = find(versions, approved_version)
    if record is None:
        return (
            None,
            Reason.VERSION_NOT_FOUND,
            f"spec.approvedVersion {approved_version} does not exist (known: {[v.version for v in versions]})",
        )
    if record.state not in APPROVABLE or not record.artifact_uri or not record.sha256:
        return (
            None,
            Reason.VERSION_NOT_APPROVABLE,
            (
                f"spec.approvedVersion {approved_version} is {record.state}"
                f"{' (' + record.reason + ')' if record.reason else ''}; "
                "only a validated version can be approved"
            ),
        )
    return record, Reason.APPROVED, ""


def mark_serving(versions: list[ModelVersion], version: int, now: datetime, by: str = "operator") -> list[ModelVersion]:
    """`version` serves; every older Approved/Serving version retires. Returns the retired ones.

    The serving history follows: the period of the version that served until now is closed (why:
    a newer version superseded it, an older one was rolled back to, or it was rejected) and one is
    opened for `version` (put in service `by` whom), both at `now`.
    """
    target = find(versions, version)
    if target is not None and history.open_period(target) is None:
        end_serving(versions, now, _ended_by(versions, version))
        # a version serving since before periods existed (an upgrade): its period began at servingAt
        upgraded = target.state == VersionState.SERVING and not target.serving_periods and target.serving_at
        start = target.serving_at if upgraded else now
        history.append_bounded(target, ServingPeriod.model_validate({"from": start, "by": by[:256]}))
    retired = []
    for record in versions:
        if record.version == version:
            if record.state != VersionState.SERVING:
                record.state = VersionState.SERVING
                record.serving_at = now
                record.reason = Reason.SERVING
                record.message = "rolled out"
        elif record.state == VersionState.SERVING or (
            record.state == VersionState.APPROVED and record.version < version
        ):
            record.state = VersionState.RETIRED
            record.retired_at = now
            record.reason = "Replaced"
            record.message = f"replaced by version {version}"
            retired.append(record)
    return retired


def _ended_by(versions: Iterable[ModelVersion], successor: int) -> PeriodEnd:
    serving = next((v for v in versions if history.open_period(v) is not None), None)
    if serving is not None and serving.state == VersionState.REJECTED:
        return PeriodEnd.REJECTED
    if serving is not None and serving.version > successor:
        return PeriodEnd.ROLLED_BACK
    return PeriodEnd.SUPERSEDED


def end_serving(versions: Iterable[ModelVersion], now: datetime, ended_by: PeriodEnd) -> list[ModelVersion]:
    """Close every open serving period at `now` (at most one is open); returns the versions it ended."""
    ended = []
    for record in versions:
        period = history.open_period(record)
        if period is not None:
            period.to, period.ended_by = now, ended_by
            ended.append(record)
    return ended


def awaiting_approval_since(versions: Iterable[ModelVersion], approval_reason: str) -> datetime | None:
    """When the version a manual approval waits for passed validation; None when none waits."""
    if approval_reason != Reason.AWAITING_APPROVAL:
        return None
    waiting = [v for v in versions if v.state == VersionState.VALIDATED]
    newest = max(waiting, key=lambda v: v.version, default=None)
    return newest.trained_at if newest is not None else None


def roll_back(record: ModelVersion, reason: str, message: str, now: datetime) -> None:
    record.state = VersionState.ROLLED_BACK
    record.reason = reason
    record.message = message[:1024]
    record.retired_at = now


def prune(versions: list[ModelVersion], limit: int, keep: Iterable[int | None]) -> list[ModelVersion]:
    """Keep the newest `limit` versions, never dropping the serving or training one (the store keeps all)."""
    pinned = {v for v in keep if v is not None}
    ordered = sorted(versions, key=lambda v: v.version)
    while len(ordered) > limit:
        victim = next((v for v in ordered if v.version not in pinned), None)
        if victim is None:
            break
        ordered.remove(victim)
    return ordered


def restore(
    records: Iterable[ModelVersion], highest: int | None, limit: int, now: datetime
) -> tuple[list[ModelVersion], int | None]:
    """Versions rebuilt from the store's registry for a Model that has no status: (versions, latest).

    A version that was training when the previous object went away can never report: it is Failed.
    A Serving one keeps its state, so it is rolled out again from its record (artifact and sha256)
    without waiting for a retrain. `latest` counts versions too old to be kept, so numbers never repeat.
    """
    kept = sorted((r.model_copy(deep=True) for r in records), key=lambda r: r.version)[-limit:] if limit else []
    for record in kept:
        if record.state == VersionState.TRAINING:
            fail(record, Reason.JOB_LOST, "the Model was recreated while this version trained", now)
    # the deleted Model's server went with it: its last period ends (no later than now)
    end_serving(kept, now, PeriodEnd.DELETED)
    latest = max([highest or 0, *(r.version for r in kept)]) or None
    return kept, latest
