from __future__ import annotations

from mlops_operator.api.results import TrainResult
from mlops_operator.api.v1alpha1.model import GateVerdict, Metric, ModelVersion, VersionState
from mlops_operator.reconcilers.model import versions as ledger
from tests.unit.factories import NOW

S = VersionState


def v(n: int, state: VersionState, artifact: bool = True) -> ModelVersion:
    return ModelVersion(
        version=n,
        state=state,
        artifact_uri=f"file:///m/v{n}" if artifact else None,
        sha256="a" * 64 if artifact else None,
    )


def test_next_version_counts_status_jobs_and_latest() -> None:
    assert ledger.next_version([], [], None) == 1
    assert ledger.next_version([v(1, S.SERVING), v(2, S.REJECTED)], [], 2) == 3
    assert ledger.next_version([v(1, S.SERVING)], [4], 1) == 5  # a Job the status never recorded
    assert ledger.next_version([], [], 7) == 8  # pruned from status, still used


def test_trained_records_gate_and_state() -> None:
    record = v(1, S.TRAINING, artifact=False)
    result = TrainResult(ok=True, metrics={"accuracy": 0.9}, artifact_uri="file:///m", sha256="b" * 64)
    gate = GateVerdict(passed=False, reason="NotBetterThanChampion", message="m", metric=Metric.ACCURACY, score=0.9)
    ledger.trained(record, result, gate, NOW)
    assert (record.state, record.reason, record.sha256, record.metrics) == (
        S.REJECTED,
        "NotBetterThanChampion",
        "b" * 64,
        {"accuracy": 0.9},
    )


def test_automatic_candidate_is_the_newest_approved() -> None:
    versions = [v(1, S.SERVING), v(2, S.ROLLED_BACK), v(3, S.REJECTED), v(4, S.VALIDATED)]
    ledger.auto_approve(versions, NOW)
    assert versions[3].state == S.APPROVED
    target, _, _ = ledger.candidate(versions, "Automatic", None)
    assert target is not None and target.version == 4
    versions[3].state = S.ROLLED_BACK
    target, _, _ = ledger.candidate(versions, "Automatic", None)
    assert target is not None and target.version == 1  # back to the champion


def test_manual_candidate_waits_for_approved_version_and_refuses_rejected() -> None:
    versions = [v(1, S.SERVING), v(2, S.VALIDATED), v(3, S.REJECTED)]
    target, reason, message = ledger.candidate(versions, "Manual", None)
    assert target is None and reason == "AwaitingApproval" and "approvedVersion: 2" in message
    target, _, _ = ledger.candidate(versions, "Manual", 2)
    assert target is not None and target.version == 2
    target, reason, _ = ledger.candidate(versions, "Manual", 3)
    assert target is None and reason == "VersionNotApprovable"
    target, reason, _ = ledger.candidate(versions, "Manual", 9)
    assert target is None and reason == "VersionNotFound"


def test_mark_serving_retires_older_serving_and_approved_only() -> None:
    versions = [v(1, S.RETIRED), v(2, S.SERVING), v(3, S.APPROVED), v(4, S.APPROVED), v(5, S.APPROVED)]
    retired = ledger.mark_serving(versions, 4, NOW)
    assert [r.version for r in retired] == [2, 3]
    assert [x.state for x in versions] == [S.RETIRED, S.RETIRED, S.RETIRED, S.SERVING, S.APPROVED]


def test_prune_keeps_serving_and_training() -> None:
    versions = [v(n, S.REJECTED) for n in range(1, 8)]
    versions[0].state = S.SERVING
    kept = ledger.prune(versions, 3, keep=[1, 7])
    assert [x.version for x in kept] == [1, 6, 7]


def test_restore_keeps_the_newest_fails_the_lost_training_and_never_reuses_a_number() -> None:
    stored = [v(7, S.TRAINING), v(6, S.SERVING), v(5, S.RETIRED), v(4, S.REJECTED)]  # newest first
    versions, latest = ledger.restore(stored, highest=9, limit=3, now=NOW)
    assert [(x.version, x.state) for x in versions] == [(5, S.RETIRED), (6, S.SERVING), (7, S.FAILED)]
    assert versions[2].reason == "JobLost" and stored[0].state == S.TRAINING  # the input is not mutated
    assert latest == 9  # versions 8 and 9 did not fit the report, their numbers are still taken
    assert ledger.next_version(versions, [], latest) == 10
    assert ledger.restore([], highest=None, limit=20, now=NOW) == ([], None)


def test_a_version_a_person_rejected_is_never_a_candidate() -> None:
    from mlops_operator import contracts
    from mlops_operator.api.v1alpha1.model import ModelVersion, VersionState
    from mlops_operator.reconcilers.model import versions as ledger

    def version(n: int, state: VersionState) -> ModelVersion:
        return ModelVersion(version=n, state=state, artifact_uri=f"file:///m/v{n}", sha256="a" * 64)

    versions = [version(1, VersionState.RETIRED), version(2, VersionState.SERVING), version(3, VersionState.TRAINING)]
    annotations = {contracts.ANNOTATION_REJECTED_VERSIONS: '{"2": "leaks the label", "3": "too slow"}'}
    changed = ledger.reject_by_user(versions, contracts.rejected_versions(annotations))
    assert [v.version for v in changed] == [2]
    assert versions[1].state == VersionState.REJECTED and versions[1].reason == "RejectedByUser"
    assert "leaks the label" in (versions[1].message or "")
    assert versions[2].state == VersionState.TRAINING  # settles first, rejected on a later run
    target, _, _ = ledger.candidate(versions, "Manual", 2)
    assert target is None
    assert contracts.rejected_versions({contracts.ANNOTATION_REJECTED_VERSIONS: "not json"}) == {}
