from __future__ import annotations

import json
from typing import Any

from mlops_operator.api.results import TrainResult
from mlops_operator.reconcilers import observe

JOB_UID = "11111111-1111-1111-1111-111111111111"
OWNER = {"apiVersion": "batch/v1", "kind": "Job", "name": "m-train-1", "uid": JOB_UID, "controller": True}


def job(*conditions: tuple[str, str], deadline: int = 60) -> dict[str, Any]:
    return {
        "metadata": {"name": "m-train-1", "uid": JOB_UID},
        "spec": {"activeDeadlineSeconds": deadline},
        "status": {"conditions": [{"type": t, "status": "True", "reason": r, "message": "msg"} for t, r in conditions]},
    }


def pod(terminated: dict[str, Any], created: str = "2026-01-01T00:00:00Z", key: str = "state") -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "creationTimestamp": created, "ownerReferences": [OWNER]},
        "spec": {"containers": [{"name": "main", "resources": {"limits": {"memory": "64Mi"}}}]},
        "status": {"containerStatuses": [{"name": "main", key: {"terminated": terminated}}]},
    }


RESULT = TrainResult(ok=True, version=1, metrics={"accuracy": 0.97}, artifact_uri="file:///a", sha256="c" * 64)


def test_active_job_has_no_outcome_yet() -> None:
    assert observe.job_outcome(job(), [], TrainResult, "main").phase == observe.JobPhase.ACTIVE


def test_succeeded_job_yields_the_result_from_the_termination_message() -> None:
    out = observe.job_outcome(
        job(("Complete", "")),
        [pod({"exitCode": 0, "message": RESULT.model_dump_json()})],
        TrainResult,
        "main",
    )
    assert out.phase == observe.JobPhase.SUCCEEDED and out.result == RESULT


def test_result_after_log_lines_is_found() -> None:
    message = "loading data\nfitting\n" + json.dumps(RESULT.dump())
    assert observe.parse_result(TrainResult, message) == RESULT


def test_succeeded_without_result_is_reported_not_guessed() -> None:
    out = observe.job_outcome(job(("Complete", "")), [pod({"exitCode": 0, "message": "garbage"})], TrainResult, "main")
    assert out.phase == observe.JobPhase.FAILED and out.reason == "ResultUnreadable" and "garbage" in out.message


def test_oom_killed_names_the_limit() -> None:
    out = observe.job_outcome(
        job(("Failed", "BackoffLimitExceeded")),
        [pod({"exitCode": 137, "reason": "OOMKilled"})],
        TrainResult,
        "main",
    )
    assert out.reason == "OOMKilled" and "64Mi" in out.message and "limits.memory" in out.message


def test_workload_reason_wins_for_permanent_errors() -> None:
    failed = TrainResult(ok=False, error="column 'y' not in data (columns: a, b)", reason="TargetMissing")
    out = observe.job_outcome(
        job(("Failed", "PodFailurePolicy")),
        [pod({"exitCode": 10, "message": failed.model_dump_json()})],
        TrainResult,
        "main",
    )
    assert (out.reason, out.message) == ("TargetMissing", "column 'y' not in data (columns: a, b)")


def test_exit_code_maps_to_a_reason_without_a_result() -> None:
    out = observe.job_outcome(
        job(("Failed", "PodFailurePolicy")),
        [pod({"exitCode": 11, "message": "Traceback ..."})],
        TrainResult,
        "main",
    )
    assert out.reason == "SpecError" and "code 11" in out.message


def test_deadline_and_backoff() -> None:
    out = observe.job_outcome(job(("Failed", "DeadlineExceeded"), deadline=30), [], TrainResult, "main")
    assert out.reason == "DeadlineExceeded" and "activeDeadlineSeconds=30" in out.message
    out = observe.job_outcome(
        job(("Failed", "BackoffLimitExceeded")),
        [pod({"exitCode": 1, "message": "boom"}, key="lastState")],
        TrainResult,
        "main",
    )
    assert out.reason == "BackoffLimitExceeded" and "boom" in out.message and "exit code 1" in out.message


def test_newest_pod_is_read() -> None:
    old = pod({"exitCode": 1, "message": "old"}, created="2026-01-01T00:00:00Z")
    new = pod({"exitCode": 1, "message": "new"}, created="2026-01-01T00:05:00Z")
    term = observe.termination([old, new], "main")
    assert term is not None and term.message == "new"


def deployment(version: int, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"generation": 2},
        "spec": {
            "replicas": 2,
            "template": {"metadata": {"annotations": {"mlops.dev/served-version": str(version)}}},
        },
        "status": {"observedGeneration": 2, **status},
    }


def test_rollout_states() -> None:
    done = observe.rollout(deployment(3, replicas=2, updatedReplicas=2, availableReplicas=2), [])
    assert (done.state, done.version) == (observe.RolloutState.COMPLETE, 3)
    surging = observe.rollout(deployment(3, replicas=3, updatedReplicas=2, availableReplicas=2), [])
    assert surging.state == observe.RolloutState.PROGRESSING
    stale = observe.rollout(
        {**deployment(3, replicas=2, updatedReplicas=2, availableReplicas=2), "metadata": {"generation": 3}},
        [],
    )
    assert stale.state == observe.RolloutState.PROGRESSING
    deadline = deployment(
        3,
        conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "x"}],
    )
    assert observe.rollout(deadline, []).reason == "ProgressDeadlineExceeded"


def test_crash_loop_of_the_new_version_fails_the_rollout_fast() -> None:
    crashing = {
        "metadata": {"name": "srv-1", "labels": {"mlops.dev/model-version": "3"}},
        "status": {
            "containerStatuses": [
                {
                    "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 13, "message": "sha256 mismatch"}},
                }
            ]
        },
    }
    out = observe.rollout(deployment(3, replicas=3, updatedReplicas=1, availableReplicas=2), [crashing])
    assert out.state == observe.RolloutState.FAILED and "sha256 mismatch" in out.message
    # a crash-looping pod of another version does not fail this rollout
    assert (
        observe.rollout(deployment(4, replicas=3, updatedReplicas=1), [crashing]).state
        == observe.RolloutState.PROGRESSING
    )
