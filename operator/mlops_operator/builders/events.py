"""Release events: the CloudEvents a Model's ledger implies, and the notify Job that delivers them.

Events are derived from `status.versions` (level-based, like everything else): each transition has
a recorded instant (trainedAt, approvedAt, a serving period's start, retiredAt), and the event's id
is a hash of the Model's uid, the version, the type and that instant. So the same transition always
yields the same id: the operator recognises what it already sent, and a receiver de-duplicates a
retried delivery by id. Pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from mlops_operator import contracts
from mlops_operator.api.base import Resources
from mlops_operator.api.v1alpha1.events import EventsPlan, EventType
from mlops_operator.api.v1alpha1.model import ApprovalPolicy, Model, ModelVersion, VersionState
from mlops_operator.api.v1alpha1.serving_periods import PeriodEnd
from mlops_operator.builders import jobs, meta, pods
from mlops_operator.settings import Settings

SPEC_VERSION: Final = "1.0"
TYPE_PREFIX: Final = "dev.mlops.model.version."
MAX_BATCH: Final = 50
ANNOTATION_EVENT_IDS: Final = f"{contracts.GROUP}/event-ids"
KEYS_VOLUME: Final = "event-keys"
KEYS_PATH: Final = "/var/run/mlops/event-keys"
NOTIFY_RESOURCES: Final = Resources.model_validate(
    {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}}
)
EVENTS_BACKOFF_LIMIT: Final = 1
# 50 events x 4 attempts (1 + 2 + 4 s of pauses) per sink stop at a sink's first exhausted event,
# so a batch's worst case is a few timeouts per sink; the deadline bounds it anyway.
EVENTS_DEADLINE_SECONDS: Final = 600


@dataclass(frozen=True)
class Transition:
    """One registry transition: what happened to which version, and when (None: not recorded)."""

    type: EventType
    version: ModelVersion
    at: datetime | None
    by: str | None = None


def source_of(model: Model) -> str:
    return f"/apis/{contracts.GROUP}/v1alpha1/namespaces/{model.namespace}/models/{model.name}"


def event_id(model: Model, transition: Transition) -> str:
    at = transition.at.isoformat() if transition.at else ""
    key = f"{model.uid}/{transition.version.version}/{transition.type}/{at}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def transitions(model: Model, versions: Iterable[ModelVersion]) -> list[Transition]:
    """Every transition the ledger records, oldest first (unknown instants last), filtered by spec.events.types."""
    wanted = set(model.spec.events.types) if model.spec.events and model.spec.events.types else set(EventType)
    manual = model.spec.approval.policy == ApprovalPolicy.MANUAL
    found = [t for v in versions for t in _of_version(v, manual) if t.type in wanted]
    return sorted(found, key=lambda t: (t.at is None, t.at or datetime.min, t.version.version))


def _of_version(v: ModelVersion, manual: bool) -> Iterator[Transition]:
    gated = v.gate is not None and v.state not in (VersionState.TRAINING, VersionState.FAILED)
    if gated:
        yield Transition(EventType.TRAINED, v, v.trained_at)
    if gated and v.gate is not None and not v.gate.passed:
        yield Transition(EventType.REJECTED, v, v.trained_at)
    elif v.state == VersionState.REJECTED:  # by a person: the instant is not recorded
        yield Transition(EventType.REJECTED, v, None)
    if gated and manual and v.gate is not None and v.gate.passed:
        yield Transition(EventType.AWAITING_APPROVAL, v, v.trained_at)
    if v.approved_at is not None:
        yield Transition(EventType.APPROVED, v, v.approved_at, _approver(v))
    periods = v.serving_periods or []
    for period in periods:
        yield Transition(EventType.SERVING, v, period.start, period.by)
        if period.ended_by == PeriodEnd.ROLLED_BACK and period.to is not None:
            yield Transition(EventType.ROLLED_BACK, v, period.to)
    if not periods and v.serving_at is not None and v.state == VersionState.SERVING:
        yield Transition(EventType.SERVING, v, v.serving_at)
    if v.state == VersionState.ROLLED_BACK:  # its rollout failed
        yield Transition(EventType.ROLLED_BACK, v, v.retired_at)
    if v.state == VersionState.RETIRED:
        yield Transition(EventType.RETIRED, v, v.retired_at)


def _approver(v: ModelVersion) -> str | None:
    # approvedBy comes with the admission webhook (issue 15, item 1); until then it is unknown
    by = getattr(v, "approved_by", None)
    return str(by) if by else None


def cloud_event(model: Model, transition: Transition, now: datetime) -> dict[str, Any]:
    """A CloudEvents 1.0 event in structured mode (the whole event is the JSON body)."""
    v = transition.version
    data: dict[str, Any] = {
        "namespace": model.namespace,
        "model": model.name,
        "version": v.version,
        "datasetVersion": v.dataset_version,
        "metrics": dict(v.metrics),
        "artifactUri": v.artifact_uri,
        "sha256": v.sha256,
    }
    if v.gate is not None:
        data["gate"] = {"passed": v.gate.passed, "reason": str(v.gate.reason), "metric": str(v.gate.metric)}
    if transition.by:
        data["by"] = transition.by
    approver = _approver(v)
    if approver:
        data["approvedBy"] = approver
    return {
        "specversion": SPEC_VERSION,
        "id": event_id(model, transition),
        "source": source_of(model),
        "type": TYPE_PREFIX + transition.type,
        "subject": str(v.version),
        "time": (transition.at or now).isoformat(),
        "datacontenttype": "application/json",
        "data": data,
    }


def events_job_name(model: Model, ids: Iterable[str]) -> str:
    return meta.child_name(model.name, "events", meta.hash8(sorted(ids)))


def events_job(model: Model, events: list[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """Deliver `events` to the Model's sinks: each sink's HMAC key is mounted from its Secret (the
    operator never reads it); the pod never touches the store."""
    spec = model.spec.events
    if spec is None or not events:
        raise ValueError("events_job needs spec.events and at least one event")
    plan = EventsPlan(
        events=events,
        sinks=[s.url for s in spec.sinks],
        allow_http=settings.webhook_allow_http,
        allow_private=settings.webhook_allow_private,
    )
    container = pods.workload_container(
        jobs.WORKLOAD_CONTAINER,
        ["notify-events", contracts.PLAN_FLAG, jobs._plan_json(plan)],
        settings,
        NOTIFY_RESOURCES,
        store=False,
    )
    container["env"] = [{"name": "MLOPS_EVENT_KEYS_DIR", "value": KEYS_PATH}, {"name": "HOME", "value": pods.TMP_PATH}]
    container["volumeMounts"].append({"name": KEYS_VOLUME, "mountPath": KEYS_PATH, "readOnly": True})
    ids = [str(e["id"]) for e in events]
    job = jobs._job(  # the Job every workload runs in: podFailurePolicy, TTL, PSS-restricted pod
        events_job_name(model, ids),
        model,
        contracts.Component.EVENTS,
        container,
        settings,
        backoff_limit=EVENTS_BACKOFF_LIMIT,
        deadline_seconds=EVENTS_DEADLINE_SECONDS,
        annotations={ANNOTATION_EVENT_IDS: ",".join(ids)},
        store=False,
    )
    sources = [
        {"secret": {"name": s.secret_ref.name, "items": [{"key": s.secret_ref.key, "path": f"sink-{i}"}]}}
        for i, s in enumerate(spec.sinks)
    ]
    volume = {"name": KEYS_VOLUME, "projected": {"sources": sources, "defaultMode": 0o440}}
    job["spec"]["template"]["spec"]["volumes"].append(volume)
    return job


__all__ = [
    "ANNOTATION_EVENT_IDS",
    "MAX_BATCH",
    "Transition",
    "cloud_event",
    "event_id",
    "events_job",
    "events_job_name",
    "source_of",
    "transitions",
]
