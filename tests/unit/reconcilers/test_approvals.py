"""The admission webhook's records (who approved, rejected, triggered training) and four-eyes counting."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops_operator import contracts
from mlops_operator.api.v1alpha1.approvals import ApprovalAction, ApprovalSpec
from mlops_operator.api.v1alpha1.model import ModelVersion, VersionState
from mlops_operator.reconcilers import approvals

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALICE = {"username": "alice", "groups": ["ml-approvers", "system:authenticated"]}
BOB = {"username": "bob", "groups": ["ml-approvers"]}
MALLORY = {"username": "mallory", "groups": ["devs"]}


def obj(approved: int | None = None, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"annotations": annotations or {}}, "spec": {"task": "classification", **spec}}
    if approved is not None:
        body["spec"]["approvedVersion"] = approved
    return body


def recorded(result: dict[str, str | None]) -> list[approvals.Entry]:
    return approvals.entries({contracts.ANNOTATION_APPROVALS: result[contracts.ANNOTATION_APPROVALS] or ""})


def test_setting_approved_version_records_the_authenticated_user() -> None:
    result = approvals.admit("UPDATE", ALICE, obj(), obj(approved=2), NOW)
    [entry] = recorded(result)
    assert (entry.version, entry.action, entry.user, entry.at) == (2, ApprovalAction.APPROVE, "alice", NOW)
    assert entry.groups == ["ml-approvers", "system:authenticated"]
    assert result[contracts.ANNOTATION_TRIGGERED_BY] is None  # an approval alone triggers no training


def test_a_client_cannot_write_the_records_itself() -> None:
    genuine = approvals.admit("UPDATE", ALICE, obj(), obj(approved=2), NOW)
    before = obj(approved=2, annotations={k: v for k, v in genuine.items() if v is not None})
    forged = json.dumps([{"version": 3, "action": "Approve", "user": "bob", "at": "2026-03-01T12:00:00Z"}])
    sent = obj(approved=2, annotations={contracts.ANNOTATION_APPROVALS: forged, contracts.ANNOTATION_TRIGGERED_BY: "x"})
    result = approvals.admit("UPDATE", MALLORY, before, sent, NOW + timedelta(seconds=5))
    assert result[contracts.ANNOTATION_APPROVALS] == genuine[contracts.ANNOTATION_APPROVALS]  # the old value back
    assert result[contracts.ANNOTATION_TRIGGERED_BY] is None  # removed: it was not there before
    # on create, whatever the client brought is dropped; the creator is the trigger
    created = approvals.admit("CREATE", MALLORY, None, sent, NOW)
    assert [(e.user, e.version) for e in recorded(created)] == [("mallory", 2)]
    assert json.loads(created[contracts.ANNOTATION_TRIGGERED_BY] or "")["user"] == "mallory"


def test_the_approve_annotation_is_a_second_approval_of_the_same_version() -> None:
    first = approvals.admit("UPDATE", ALICE, obj(), obj(approved=2), NOW)
    before = obj(approved=2, annotations={k: v for k, v in first.items() if v is not None})
    asked = obj(approved=2, annotations={**before["metadata"]["annotations"], contracts.ANNOTATION_APPROVE: "2"})
    second = approvals.admit("UPDATE", BOB, before, asked, NOW)
    assert [(e.user, e.version) for e in recorded(second)] == [("alice", 2), ("bob", 2)]
    assert second[contracts.ANNOTATION_APPROVE] is None  # consumed
    # a request left from a time without the webhook is dropped, not counted for the next editor
    stale = obj(approved=2, annotations={contracts.ANNOTATION_APPROVE: "2"})
    unrelated = approvals.admit(
        "UPDATE", BOB, stale, obj(approved=2, annotations={contracts.ANNOTATION_APPROVE: "2"}), NOW
    )
    assert unrelated[contracts.ANNOTATION_APPROVALS] is None and unrelated[contracts.ANNOTATION_APPROVE] is None
    # the plugin sends both the spec and the annotation: one entry, not two
    both = obj(approved=3, annotations={contracts.ANNOTATION_APPROVE: "3"})
    assert [e.version for e in recorded(approvals.admit("UPDATE", ALICE, obj(approved=2), both, NOW))] == [3]


def test_rejections_and_training_triggers_are_recorded() -> None:
    rejected = {contracts.ANNOTATION_REJECTED_VERSIONS: '{"4": "leaks the label"}'}
    result = approvals.admit("UPDATE", BOB, obj(), obj(annotations=rejected), NOW)
    assert [(e.version, e.action, e.user) for e in recorded(result)] == [(4, ApprovalAction.REJECT, "bob")]
    edited = approvals.admit("UPDATE", MALLORY, obj(), obj(target="churned"), NOW)
    assert json.loads(edited[contracts.ANNOTATION_TRIGGERED_BY] or "")["user"] == "mallory"
    retrain = {contracts.ANNOTATION_RETRAIN_REQUESTED: "2026-03-01T00:00:00Z;new data"}
    asked = approvals.admit("UPDATE", BOB, obj(), obj(annotations=retrain), NOW)
    assert (
        approvals.trigger_user({contracts.ANNOTATION_TRIGGERED_BY: asked[contracts.ANNOTATION_TRIGGERED_BY] or ""})
        == "bob"
    )


def version(number: int, triggered_by: str | None = "mallory") -> ModelVersion:
    return ModelVersion(version=number, state=VersionState.VALIDATED, triggered_by=triggered_by)


def entries(*who: tuple[dict[str, Any], int]) -> list[approvals.Entry]:
    found: list[approvals.Entry] = []
    for i, (user, number) in enumerate(who):
        result = approvals.admit("UPDATE", user, obj(), obj(approved=number), NOW + timedelta(seconds=i))
        found += recorded(result)
    return found


def test_merge_copies_each_entry_once_into_its_version() -> None:
    v2, v3 = version(2), version(3)
    log = entries((ALICE, 2), (BOB, 3), (ALICE, 9))  # version 9 is not in status: skipped
    assert [(r.version, a.user) for r, a in approvals.merge([v2, v3], log)] == [(2, "alice"), (3, "bob")]
    assert approvals.merge([v2, v3], log) == []  # the next reconcile reads the same annotation
    assert [a.user for a in v2.approvals or []] == ["alice"]


def test_two_distinct_people_are_needed_and_the_same_person_twice_counts_once() -> None:
    spec = ApprovalSpec(policy="Manual", required_approvers=2, approver_group="ml-approvers")
    v2 = version(2)
    approvals.merge([v2], entries((ALICE, 2), (ALICE, 2)))
    count = approvals.tally(v2, spec)
    assert count.counted == ("alice",) and not count.enough
    assert count.message(2).startswith("version 2: 1 of 2 approvals (alice); needs one more from group ml-approvers")
    approvals.merge([v2], entries((BOB, 2)))
    assert approvals.tally(v2, spec).counted == ("alice", "bob") and approvals.tally(v2, spec).enough
    assert approvals.put_in_service_by(v2) == "bob"


def test_outside_the_group_and_the_trigger_under_separation_of_duties_do_not_count() -> None:
    spec = ApprovalSpec(policy="Manual", approver_group="ml-approvers", separation_of_duties=True)
    v2 = version(2, triggered_by="alice")
    approvals.merge([v2], entries((MALLORY, 2), (ALICE, 2)))
    count = approvals.tally(v2, spec)
    assert count.counted == () and not count.enough
    assert "mallory's approval does not count: mallory is not in group ml-approvers" in count.message(2)
    assert "alice's approval does not count: alice triggered its training (separationOfDuties)" in count.message(2)
    assert [(a.user, a.counted) for a in v2.approvals or []] == [("mallory", False), ("alice", False)]
    assert approvals.put_in_service_by(v2) == approvals.LEGACY_BY


def test_without_four_eyes_spec_approved_version_alone_still_serves() -> None:
    assert not approvals.needs_records(ApprovalSpec(policy="Manual"))
    assert approvals.needs_records(ApprovalSpec(policy="Manual", required_approvers=2))
    assert approvals.needs_records(ApprovalSpec(policy="Manual", separation_of_duties=True))


def test_malformed_records_read_as_none() -> None:
    for raw in ("not json", "{}", '[{"version": "x"}]', "[" * 5000):
        assert approvals.entries({contracts.ANNOTATION_APPROVALS: raw}) == []
    assert approvals.trigger_user({contracts.ANNOTATION_TRIGGERED_BY: "[]"}) is None
