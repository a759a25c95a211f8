"""Pure readings of child objects: Job + Pods → outcome and workload result; Deployment → rollout.

A workload reports a compact JSON result through its termination message. With
`FallbackToLogsOnError` the message may be the tail of the logs instead, so the last JSON object
line is taken, and a message that is not a result is reported, never guessed at.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

from pydantic import BaseModel, ValidationError

from mlops_operator import contracts
from mlops_operator.conditions import Reason

R = TypeVar("R", bound=BaseModel)

EXIT_CODE_REASONS: dict[int, str] = {
    contracts.ExitCode.DATA_ERROR: Reason.DATA_ERROR,
    contracts.ExitCode.SPEC_ERROR: Reason.SPEC_ERROR,
    contracts.ExitCode.STORE_ERROR: Reason.STORE_ERROR,
    contracts.ExitCode.INTEGRITY_ERROR: Reason.INTEGRITY_ERROR,
}
CRASH_RESTARTS = 2
_REASON = re.compile(r"^[A-Z][A-Za-z0-9]{0,127}$")


class JobPhase(enum.StrEnum):
    ACTIVE = "Active"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class Termination:
    exit_code: int | None
    reason: str  # OOMKilled, Error, Completed, DeadlineExceeded…
    message: str
    memory_limit: str | None = None


@dataclass(frozen=True)
class JobOutcome(Generic[R]):
    phase: JobPhase
    reason: str = ""
    message: str = ""
    result: R | None = None

    @property
    def finished(self) -> bool:
        return self.phase != JobPhase.ACTIVE


def _conditions(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list((obj.get("status") or {}).get("conditions") or [])


def _true(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in _conditions(obj) if c.get("type") == type_ and c.get("status") == "True"), None)


class JobState(NamedTuple):
    """A Job's phase from its conditions, with the Job controller's reason and message when it failed."""

    phase: JobPhase
    reason: str = ""
    message: str = ""

    @property
    def active(self) -> bool:
        return self.phase == JobPhase.ACTIVE


def job_phase(job: dict[str, Any]) -> JobState:
    if _true(job, "Complete"):
        return JobState(JobPhase.SUCCEEDED)
    failed = _true(job, "Failed")
    if failed:
        reason = str(failed.get("reason") or Reason.JOB_FAILED)
        return JobState(JobPhase.FAILED, reason, str(failed.get("message") or ""))
    return JobState(JobPhase.ACTIVE)


def termination(pods: list[dict[str, Any]], container: str | None = None) -> Termination | None:
    """The newest terminated state of the workload container among a Job's pods."""
    newest = sorted(pods, key=lambda p: str(p.get("metadata", {}).get("creationTimestamp", "")), reverse=True)
    for pod in newest:
        limits = {
            c.get("name"): ((c.get("resources") or {}).get("limits") or {}).get("memory")
            for c in (pod.get("spec") or {}).get("containers") or []
        }
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if container is not None and status.get("name") != container:
                continue
            for key in ("state", "lastState"):
                terminated = (status.get(key) or {}).get("terminated")
                if terminated:
                    return Termination(
                        exit_code=terminated.get("exitCode"),
                        reason=str(terminated.get("reason") or ""),
                        message=str(terminated.get("message") or ""),
                        memory_limit=limits.get(status.get("name")),
                    )
    return None


def parse_result(model: type[R], message: str) -> R | None:
    """The last line of `message` that parses as `model` (the message may end with log lines)."""
    for line in reversed(message.strip().splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            return model.model_validate(json.loads(line))
        except (ValueError, ValidationError):
            continue
    try:  # a pretty-printed (multi-line) result
        return model.model_validate(json.loads(message))
    except (ValueError, ValidationError):
        return None


def _reason(candidate: str | None, fallback: str) -> str:
    return candidate if candidate and _REASON.match(candidate) else fallback


def _tail(text: str, limit: int = 400) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


def job_outcome(job: dict[str, Any], pods: list[dict[str, Any]], model: type[R], container: str) -> JobOutcome[R]:
    state = job_phase(job)
    if state.active:
        return JobOutcome(JobPhase.ACTIVE)
    term = termination(owned_pods(job, pods), container)  # a pod that only carries the Job's labels is no witness
    result = parse_result(model, term.message) if term else None
    if state.phase == JobPhase.SUCCEEDED:
        return _succeeded(model, term, result)
    return _failed(job, state, term, result)


def _ok(result: BaseModel | None) -> bool:
    return bool(getattr(result, "ok", False))


def _succeeded(model: type[R], term: Termination | None, result: R | None) -> JobOutcome[R]:
    """A Complete Job: its result, or why the result does not count."""
    if result is None:
        seen = _tail(term.message) if term else "no pod of the Job was found"
        return JobOutcome(
            JobPhase.FAILED,
            Reason.RESULT_UNREADABLE,
            f"the Job succeeded but reported no readable {model.__name__}: {seen}",
        )
    if not _ok(result):
        return JobOutcome(
            JobPhase.FAILED,
            _reason(getattr(result, "reason", None), Reason.JOB_FAILED),
            str(getattr(result, "error", None) or "the workload reported a failure"),
            result,
        )
    return JobOutcome(JobPhase.SUCCEEDED, Reason.SUCCEEDED, "", result)


def _failed(job: dict[str, Any], state: JobState, term: Termination | None, result: R | None) -> JobOutcome[R]:
    """A Failed Job: the most specific explanation wins."""
    name = job.get("metadata", {}).get("name", "")
    if state.reason == "DeadlineExceeded":
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        return JobOutcome(
            JobPhase.FAILED,
            Reason.DEADLINE_EXCEEDED,
            f"Job {name} ran longer than activeDeadlineSeconds={deadline}; raise the deadline or shrink the work",
            result,
        )
    if term is not None and term.reason == "OOMKilled":
        limit = term.memory_limit or "unset"
        return JobOutcome(
            JobPhase.FAILED,
            Reason.OOM_KILLED,
            f"Job {name}: the container was OOM-killed at its memory limit ({limit}); raise resources.limits.memory",
            result,
        )
    if result is not None and not _ok(result):
        return JobOutcome(
            JobPhase.FAILED,
            _reason(
                getattr(result, "reason", None),
                EXIT_CODE_REASONS.get(term.exit_code or -1, Reason.JOB_FAILED) if term else Reason.JOB_FAILED,
            ),
            str(getattr(result, "error", None) or state.message),
            result,
        )
    if term is not None and term.exit_code in EXIT_CODE_REASONS:
        return JobOutcome(
            JobPhase.FAILED,
            EXIT_CODE_REASONS[term.exit_code],
            f"Job {name} exited with code {term.exit_code}: {_tail(term.message) or 'no message'}",
        )
    detail = f"; last output: {_tail(term.message)}" if term and term.message else ""
    exit_info = f" (last exit code {term.exit_code})" if term and term.exit_code is not None else ""
    return JobOutcome(
        JobPhase.FAILED,
        _reason(state.reason, Reason.JOB_FAILED),
        f"Job {name} failed{exit_info}: {state.message or state.reason}{detail}",
    )


# --- Deployments ----------------------------------------------------------------------------------
class RolloutState(enum.StrEnum):
    PROGRESSING = "Progressing"
    COMPLETE = "Complete"
    FAILED = "Failed"


@dataclass(frozen=True)
class Rollout:
    state: RolloutState
    version: int | None
    reason: str = ""
    message: str = ""


def deployment_version(deployment: dict[str, Any]) -> int | None:
    annotations = ((deployment.get("spec") or {}).get("template") or {}).get("metadata", {}).get("annotations") or {}
    value = str(annotations.get(contracts.ANNOTATION_SERVED_VERSION) or "")
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else None


def replica_set_pods(deployment: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods among `pods` whose controller is a ReplicaSet of `deployment` (`<deployment>-<hash>`):
    a pod someone labels like a server's does not fail its rollout."""
    prefix = f"{deployment['metadata']['name']}-"
    return [p for p in pods if _controller_name(p, "ReplicaSet").startswith(prefix)]


def _controller_name(obj: dict[str, Any], kind: str) -> str:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") is True and ref.get("kind") == kind:
            return str(ref.get("name") or "")
    return ""


def owned_pods(job: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods among `pods` whose controller ownerReference is `job` (by uid)."""
    uid = (job.get("metadata") or {}).get("uid")
    return [p for p in pods if uid and _controller_uid(p) == uid]


def _controller_uid(obj: dict[str, Any]) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") is True:
            return str(ref.get("uid") or "") or None
    return None


def crash_looping(pods: list[dict[str, Any]], version: int | None) -> str | None:
    """A message when a pod of `version` keeps crashing (CrashLoopBackOff after a few restarts)."""
    for pod in pods:
        labels = pod.get("metadata", {}).get("labels") or {}
        if version is not None and labels.get(contracts.LABEL_MODEL_VERSION) != str(version):
            continue
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") == "CrashLoopBackOff" and int(status.get("restartCount") or 0) >= CRASH_RESTARTS:
                last = (status.get("lastState") or {}).get("terminated") or {}
                detail = _tail(str(last.get("message") or ""), 300)
                code = last.get("exitCode")
                return (
                    f"pod {pod['metadata'].get('name')} of version {version} is crash-looping "
                    f"({status.get('restartCount')} restarts, last exit code {code})"
                    f"{': ' + detail if detail else ''}"
                )
    return None


def rollout(deployment: dict[str, Any], pods: list[dict[str, Any]]) -> Rollout:
    """kubectl's `rollout status` rule, plus crash-loop detection so a bad version fails fast."""
    version = deployment_version(deployment)
    meta = deployment.get("metadata") or {}
    status = deployment.get("status") or {}
    spec_replicas = int((deployment.get("spec") or {}).get("replicas", 1) or 0)
    for cond in _conditions(deployment):
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return Rollout(RolloutState.FAILED, version, "ProgressDeadlineExceeded", str(cond.get("message") or ""))
    crash = crash_looping(pods, version)
    if crash:
        return Rollout(RolloutState.FAILED, version, "CrashLoopBackOff", crash)
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return Rollout(RolloutState.PROGRESSING, version, Reason.ROLLING_OUT, "waiting for the Deployment controller")
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < spec_replicas:
        return Rollout(
            RolloutState.PROGRESSING,
            version,
            Reason.ROLLING_OUT,
            f"{updated} of {spec_replicas} replicas updated",
        )
    if total > updated:
        return Rollout(
            RolloutState.PROGRESSING,
            version,
            Reason.ROLLING_OUT,
            f"{total - updated} old replicas pending termination",
        )
    if available < updated:
        return Rollout(
            RolloutState.PROGRESSING,
            version,
            Reason.ROLLING_OUT,
            f"{available} of {updated} updated replicas available",
        )
    return Rollout(RolloutState.COMPLETE, version, Reason.SERVING, f"{available} replicas available")
