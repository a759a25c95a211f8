"""Release events: which transitions the ledger implies, their ids, the CloudEvent, the notify Job."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from mlops_operator.api.v1alpha1.model import Model, ModelVersion
from mlops_operator.builders import events
from tests.unit import factories as f

T0 = datetime(2026, 1, 2, 3, 0, 0, tzinfo=UTC)
SINKS = {"sinks": [{"url": "https://ci.example/hooks/mlops", "secretRef": {"name": "ci-hmac", "key": "key"}}]}
GATE_PASSED = {"passed": True, "reason": "Passed", "message": "ok", "metric": "accuracy", "score": 0.96}
GATE_FAILED = GATE_PASSED | {"passed": False, "reason": "BelowThreshold", "message": "too low"}


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ledger() -> list[dict[str, Any]]:
    """v1 served, was superseded by v2 and retired; v2 serves; v3 failed the gate."""
    common = {"datasetVersion": "d" * 12, "metrics": {"accuracy": 0.96}, "artifactUri": "file:///a", "sha256": "a"}
    return [
        common
        | {
            "version": 1,
            "state": "Retired",
            "gate": GATE_PASSED,
            "trainedAt": at(1),
            "approvedAt": at(2),
            "servingAt": at(3),
            "retiredAt": at(13),
            "servingPeriods": [{"from": at(3), "to": at(13), "endedBy": "Superseded", "by": "operator"}],
        },
        common
        | {
            "version": 2,
            "state": "Serving",
            "gate": GATE_PASSED,
            "trainedAt": at(11),
            "approvedAt": at(12),
            "servingAt": at(13),
            "servingPeriods": [{"from": at(13), "by": "operator"}],
        },
        common | {"version": 3, "state": "Rejected", "gate": GATE_FAILED, "trainedAt": at(21)},
    ]


def model_with(ledger_: list[dict[str, Any]], **events_spec: Any) -> Model:
    return f.model(events=SINKS | events_spec, status={"versions": ledger_})


def kinds(model: Model) -> list[tuple[int, str]]:
    return [(t.version.version, str(t.type)) for t in events.transitions(model, model.status.versions)]


def test_the_ledger_implies_each_transition_once_in_time_order() -> None:
    assert kinds(model_with(ledger())) == [
        (1, "trained"),
        (1, "approved"),
        (1, "serving"),
        (2, "trained"),
        (2, "approved"),
        (1, "retired"),
        (2, "serving"),
        (3, "trained"),
        (3, "rejected"),
    ]


def test_manual_approval_adds_awaiting_and_a_rollback_ends_a_period() -> None:
    versions = ledger()
    versions[1]["servingPeriods"] = [
        {"from": at(13), "to": at(30), "endedBy": "RolledBack", "by": "spec.approvedVersion"}
    ]
    versions[1]["state"] = "Retired"
    versions[1]["retiredAt"] = at(30)
    model = f.model(events=SINKS, approval={"policy": "Manual"}, status={"versions": versions})
    found = kinds(model)
    assert (1, "awaitingApproval") in found and (2, "awaitingApproval") in found
    assert (3, "awaitingApproval") not in found  # it failed the gate
    assert found[-2:] == [(2, "rolledBack"), (2, "retired")]


def test_types_filter_the_transitions() -> None:
    assert kinds(model_with(ledger(), types=["serving", "rejected"])) == [
        (1, "serving"),
        (2, "serving"),
        (3, "rejected"),
    ]


def test_ids_are_deterministic_per_transition_and_distinct_between_them() -> None:
    model = model_with(ledger())
    first = [events.cloud_event(model, t, f.NOW)["id"] for t in events.transitions(model, model.status.versions)]
    again = [
        events.cloud_event(model, t, f.NOW + timedelta(hours=1))["id"]
        for t in events.transitions(model, model.status.versions)
    ]
    assert first == again
    assert len(set(first)) == len(first)
    # the same version served again later is a new event
    versions = ledger()
    versions[1]["servingPeriods"] = [
        {"from": at(13), "to": at(40), "endedBy": "Superseded"},
        {"from": at(50), "by": "spec.approvedVersion"},
    ]
    served = [
        t
        for t in events.transitions(model_with(versions), model_with(versions).status.versions)
        if t.version.version == 2 and t.type == "serving"
    ]
    assert len({events.event_id(model, t) for t in served}) == 2


def test_a_recreated_model_has_other_ids() -> None:
    model = model_with(ledger())
    other = Model.model_validate(model.dump() | {"metadata": model.dump()["metadata"] | {"uid": "other"}})
    transition = events.transitions(model, model.status.versions)[0]
    assert events.event_id(model, transition) != events.event_id(other, transition)


def test_cloud_event_is_structured_mode_1_0() -> None:
    model = model_with(ledger())
    serving = next(
        t for t in events.transitions(model, model.status.versions) if t.type == "serving" and t.version.version == 2
    )
    event = events.cloud_event(model, serving, f.NOW)
    assert event == {
        "specversion": "1.0",
        "id": events.event_id(model, serving),
        "source": "/apis/mlops.dev/v1alpha1/namespaces/team-a/models/iris-clf",
        "type": "dev.mlops.model.version.serving",
        "subject": "2",
        "time": at(13).isoformat(),
        "datacontenttype": "application/json",
        "data": {
            "namespace": "team-a",
            "model": "iris-clf",
            "version": 2,
            "datasetVersion": "d" * 12,
            "metrics": {"accuracy": 0.96},
            "artifactUri": "file:///a",
            "sha256": "a",
            "gate": {"passed": True, "reason": "Passed", "metric": "accuracy"},
            "by": "operator",
        },
    }


def test_a_transition_without_a_recorded_instant_takes_now_but_keeps_its_id() -> None:
    versions = ledger()
    versions[1] |= {"state": "Rejected", "reason": "RejectedByUser"}
    model = model_with(versions)
    rejected = next(
        t for t in events.transitions(model, model.status.versions) if t.version.version == 2 and t.type == "rejected"
    )
    assert rejected.at is None
    assert events.cloud_event(model, rejected, f.NOW)["time"] == f.NOW.isoformat()
    assert events.cloud_event(model, rejected, at(99))["id"] == events.cloud_event(model, rejected, f.NOW)["id"]


@pytest.mark.parametrize(
    "sink",
    [
        {"url": "ftp://x.example/", "secretRef": {"name": "s", "key": "k"}},
        {"url": "https://x.example/ has space", "secretRef": {"name": "s", "key": "k"}},
        {"url": "https://x.example/"},
    ],
)
def test_a_bad_sink_is_refused_by_the_schema(sink: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        f.model(events={"sinks": [sink]})


def test_events_job(golden: Callable[[str, Any], None]) -> None:
    model = f.model(
        events={
            "sinks": [
                *SINKS["sinks"],
                {"url": "http://ticketing.team-a.svc/events", "secretRef": {"name": "tix", "key": "hmac"}},
            ]
        },
        status={"versions": ledger()},
    )
    batch = [events.cloud_event(model, t, f.NOW) for t in events.transitions(model, model.status.versions)[:2]]
    job = events.events_job(model, batch, f.SETTINGS)
    golden("events-job", job)
    assert job["metadata"]["annotations"][events.ANNOTATION_EVENT_IDS] == ",".join(e["id"] for e in batch)
    assert "ci-hmac" not in str(job["spec"]["template"]["spec"]["containers"])  # keys are mounted, not passed


def test_events_job_needs_events() -> None:
    with pytest.raises(ValueError, match=r"spec\.events"):
        events.events_job(f.model(), [{"id": "x"}], f.SETTINGS)


def test_ledger_versions_parse() -> None:
    assert all(isinstance(v, ModelVersion) for v in model_with(ledger()).status.versions)
