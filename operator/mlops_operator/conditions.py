"""Status conditions shaped like metav1.Condition (Kubernetes API conventions). Pure.

Conditions are a list used as a map keyed by `type`. `lastTransitionTime` moves only when `status`
moves, so a reconcile that re-asserts the same state writes nothing new. The clock is passed in.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from mlops_operator.api.base import Condition, ConditionStatus

TRUE = ConditionStatus.TRUE
FALSE = ConditionStatus.FALSE
UNKNOWN = ConditionStatus.UNKNOWN


class State(NamedTuple):
    """What one condition says: its status, a CamelCase reason and a message for people."""

    status: ConditionStatus
    reason: str
    message: str


class Type(enum.StrEnum):
    READY = "Ready"
    # kstatus (sigs.k8s.io/cli-utils): True only while it holds, absent otherwise
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    # Dataset
    PROFILED = "Profiled"
    # Model
    DATASET_RESOLVED = "DatasetResolved"
    TRAINED = "Trained"
    VALIDATED = "Validated"
    APPROVED = "Approved"
    SERVING = "Serving"
    # DriftMonitor
    DRIFT_DETECTED = "DriftDetected"
    RETRAIN_REQUESTED = "RetrainRequested"


class Reason(enum.StrEnum):
    """Every reason the operator itself writes. Workload results may add their own (CamelCase)."""

    INITIALIZING = "Initializing"
    INVALID_SPEC = "InvalidSpec"
    JOB_RUNNING = "JobRunning"
    JOB_LOST = "JobLost"
    SUCCEEDED = "Succeeded"
    OOM_KILLED = "OOMKilled"
    BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    DATA_ERROR = "DataError"
    SPEC_ERROR = "SpecError"
    STORE_ERROR = "StoreError"
    INTEGRITY_ERROR = "IntegrityError"
    JOB_FAILED = "JobFailed"
    RESULT_UNREADABLE = "ResultUnreadable"
    # the operator's reach (issue 12): a spec beyond the administrator's ceilings, a child the API
    # server refuses (400/422), an object of a child's name that this parent does not control
    EXCEEDS_LIMITS = "ExceedsLimits"
    CHILD_REJECTED = "ChildRejected"
    NAME_CONFLICT = "NameConflict"
    # what a tenant may point the operator at (builders.tenancy)
    IMAGE_NOT_ALLOWED = "ImageNotAllowed"
    SOURCE_NOT_ALLOWED = "SourceNotAllowed"
    SHARED_STORE_CREDENTIALS = "SharedStoreCredentials"
    # Dataset
    PROFILING = "Profiling"
    PROFILED = "Profiled"
    # Model
    DATASET_NOT_FOUND = "DatasetNotFound"
    DATASET_NOT_READY = "DatasetNotReady"
    DATASET_RESOLVED = "DatasetResolved"
    TARGET_MISSING = "TargetMissing"
    NOT_TRAINED = "NotTrained"
    READING_REGISTRY = "ReadingRegistry"
    AWAITING_APPROVAL = "AwaitingApproval"
    APPROVED = "Approved"
    VERSION_NOT_FOUND = "VersionNotFound"
    VERSION_NOT_APPROVABLE = "VersionNotApprovable"
    REJECTED_BY_USER = "RejectedByUser"
    NO_VALIDATED_VERSION = "NoValidatedVersion"
    ROLLING_OUT = "RollingOut"
    SERVING = "Serving"
    ROLLED_BACK = "RolledBack"
    ROLLOUT_FAILED = "RolloutFailed"
    ANALYSIS_FAILED = "AnalysisFailed"  # a Canary's or Shadow's candidate broke spec.serving.rollout's bounds
    SERVING_DISABLED = "ServingDisabled"
    NOTHING_TO_SERVE = "NothingToServe"
    SUPERSEDED = "Superseded"
    # DriftMonitor
    MODEL_NOT_FOUND = "ModelNotFound"
    MODEL_INVALID = "ModelInvalid"
    BASELINE_NOT_READY = "BaselineNotReady"
    WAITING_FOR_SCHEDULE = "WaitingForSchedule"
    CHECKING = "Checking"
    DRIFT = "Drift"
    NO_DRIFT = "NoDrift"
    NOT_ENOUGH_DATA = "NotEnoughData"
    SCHEMA_MISMATCH = "SchemaMismatch"
    CHECK_FAILED = "CheckFailed"
    READY = "Ready"
    # A fired trigger (DriftMonitor), and a drift or quality retrain request without new data (Model)
    REFRESH_PENDING = "RefreshPending"
    RETRAIN_REQUESTED = "RetrainRequested"
    NEW_DATA = "NewData"
    NO_NEW_DATA = "NoNewData"
    REFRESH_FAILED = "RefreshFailed"
    REFRESH_TIMED_OUT = "RefreshTimedOut"


def get(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: Sequence[Condition], type_: str) -> bool:
    found = get(conditions, type_)
    return found is not None and found.status == TRUE


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """Return a new list with `type_` set; its position in the list is kept."""
    previous = get(conditions, type_)
    transition = now if previous is None or previous.status != status else previous.last_transition_time
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message[:1024],
        last_transition_time=transition,
        observed_generation=generation,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type_ else c for c in conditions]


def set_state(
    conditions: Sequence[Condition], type_: str, state: State, *, now: datetime, generation: int | None
) -> list[Condition]:
    """`set_condition` with the status, reason and message of `state`."""
    status, reason, message = state
    return set_condition(conditions, type_, status, reason, message, now=now, generation=generation)


def ready_from(conditions: Sequence[Condition], dependencies: Sequence[str]) -> State:
    """Ready summarises its dependencies: the first one that is not True explains why (KServe's rule)."""
    for type_ in dependencies:
        found = get(conditions, type_)
        if found is None:
            return State(UNKNOWN, Reason.INITIALIZING, f"{type_} not evaluated yet")
        if found.status != TRUE:
            return State(found.status, found.reason, found.message)
    return State(TRUE, Reason.READY, "")


# Ready reasons of an object still on its way: a Job or rollout of ours runs, or what it needs (its
# Dataset, Model, baseline) is being made, as a GitOps sync that applied them together expects.
IN_PROGRESS = frozenset(
    {
        Reason.INITIALIZING,
        Reason.JOB_RUNNING,
        Reason.PROFILING,
        Reason.READING_REGISTRY,
        Reason.NOT_TRAINED,
        Reason.ROLLING_OUT,
        Reason.DATASET_NOT_FOUND,
        Reason.DATASET_NOT_READY,
        Reason.MODEL_NOT_FOUND,
        Reason.BASELINE_NOT_READY,
    }
)
# Ready reasons that no retry of the operator's heals: the spec, the data or the image must change.
PERMANENT = frozenset(
    {
        Reason.INVALID_SPEC,
        Reason.EXCEEDS_LIMITS,
        Reason.CHILD_REJECTED,
        Reason.NAME_CONFLICT,
        Reason.IMAGE_NOT_ALLOWED,
        Reason.SOURCE_NOT_ALLOWED,
        Reason.SHARED_STORE_CREDENTIALS,
        Reason.SPEC_ERROR,
        Reason.DATA_ERROR,
        Reason.INTEGRITY_ERROR,
        Reason.TARGET_MISSING,
        Reason.OOM_KILLED,
        Reason.BACKOFF_LIMIT_EXCEEDED,
        Reason.DEADLINE_EXCEEDED,
        Reason.JOB_FAILED,
        Reason.ROLLOUT_FAILED,
        Reason.VERSION_NOT_FOUND,
        Reason.VERSION_NOT_APPROVABLE,
        Reason.MODEL_INVALID,
        Reason.SCHEMA_MISMATCH,
    }
)


def remove(conditions: Sequence[Condition], type_: str) -> list[Condition]:
    return [c for c in conditions if c.type != type_]


def with_kstatus(
    conditions: Sequence[Condition],
    *,
    working: State | None = None,
    failed: bool = False,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """kstatus' Reconciling and Stalled next to Ready, so `kubectl wait` and `flux --wait` tell the truth.

    Stalled: Ready is False for a PERMANENT reason, or the kind says it `failed` for good (a
    training failure's reason is the workload's own). Reconciling, unless stalled: the kind says it
    is `working` (training, rolling out, profiling), or Ready is not True for an IN_PROGRESS reason.
    Both are abnormal-true conditions: removed while they do not hold.
    """
    ready = get(conditions, Type.READY)
    if ready is not None and ready.status == FALSE and (failed or ready.reason in PERMANENT):
        stalled = State(TRUE, ready.reason, ready.message)
        return set_state(remove(conditions, Type.RECONCILING), Type.STALLED, stalled, now=now, generation=generation)
    conditions = remove(conditions, Type.STALLED)
    if working is None and (ready is None or (ready.status != TRUE and ready.reason in IN_PROGRESS)):
        working = State(TRUE, Reason.INITIALIZING, "") if ready is None else State(TRUE, ready.reason, ready.message)
    if working is None:
        return remove(conditions, Type.RECONCILING)
    return set_state(conditions, Type.RECONCILING, working, now=now, generation=generation)
