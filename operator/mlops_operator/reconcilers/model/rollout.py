"""Canary and Shadow rollouts (spec.serving.rollout) on plain Deployments.

Canary: the candidate runs in `<model>-server-canary`, whose pods match the Service's selector, so
the traffic split is the ratio of ready pods (k of N). At each step the candidate's pods are scraped
(`/metrics` through the API server's pod proxy) and judged (`analysis.judge`): within bounds after
stepDuration the next step starts; a broken bound deletes the canary at once, the version is
RolledBack with the numbers, and the stable Deployment is scaled back. The last step (100) is the
ordinary rolling update of the stable Deployment to the candidate (serving.roll_out), after which
the canary Deployment is deleted.

Shadow: the candidate runs in `<model>-server-shadow` behind its own Service `<model>-shadow`, out of
the main Service; the champion's pods are started with the mirror flags and count agreement; the
champion's counters are read into status.rollout.shadow and judged (`analysis.judge_shadow`).

The analysis is level-based: every reconcile reads the pods' counters again, and status keeps the
step, its start and its verdicts, so an operator restart resumes where it was.
"""

from __future__ import annotations

import asyncio
import enum
from typing import Any

from mlops_operator import conditions as cond
from mlops_operator import contracts
from mlops_operator.api.v1alpha1.model import ModelVersion
from mlops_operator.api.v1alpha1.rollout import (
    MAX_STEP_RECORDS,
    RolloutPhase,
    RolloutStatus,
    RolloutStep,
    RolloutStrategy,
)
from mlops_operator.builders import serving as manifests
from mlops_operator.kube import DEPLOYMENT, POD, SERVICE
from mlops_operator.kube.scrape import ScrapeError, pod_metrics
from mlops_operator.reconcilers import observe
from mlops_operator.reconcilers.context import normal, warning
from mlops_operator.reconcilers.model import analysis, shadow_scores, versions
from mlops_operator.reconcilers.model.children import ModelRun

POLL_SECONDS = 10.0  # how often a step waiting for traffic or time is looked at again
MIRROR_FLAG = "--shadow-url"
MIRROR_SAMPLE_FLAG = "--shadow-sample-percent"
MIRROR_VERSION_FLAG = "--shadow-version"
MIRROR_DIFF_FLAG = "--shadow-max-abs-diff"


class Outcome(enum.Enum):
    PROMOTE = "promote"  # roll the stable Deployment to the candidate (serving.roll_out)
    ROLLED_BACK = "rolled-back"  # the candidate is RolledBack: choose again


def applies(run: ModelRun, target: ModelVersion) -> ModelVersion | None:
    """The champion a Canary or Shadow of `target` runs beside, or None (a Replace rollout)."""
    work = run.work
    if run.resource.spec.serving.rollout.strategy == RolloutStrategy.REPLACE or work.serving_version is None:
        return None
    if target.version == work.serving_version:
        return None
    stable = versions.find(work.versions, work.serving_version)
    return stable if stable is not None and stable.artifact_uri and stable.sha256 else None


def split(weight: int, total: int) -> tuple[int, int]:
    """(candidate, champion) pods for `weight` percent of `total`: at least one of each below 100 %,
    so with N pods the shares are k/N (one pod of one: 50 %)."""
    total = max(total, 1)
    canary = min(max(1, round(weight * total / 100)), total)
    return canary, max(1, total - canary)


def _record(run: ModelRun, target: ModelVersion, stable: ModelVersion, strategy: RolloutStrategy) -> RolloutStatus:
    """status.rollout for this candidate, started afresh when it is another one."""
    record = run.work.rollout
    fresh = (
        record is None
        or record.candidate != target.version
        or record.stable != stable.version
        or record.strategy != strategy
        or record.phase != RolloutPhase.PROGRESSING
    )
    if fresh:
        record = RolloutStatus(strategy=strategy, candidate=target.version, stable=stable.version, updated_at=run.now)
        run.work.rollout = record
        what = "canary" if strategy == RolloutStrategy.CANARY else "shadow"
        run.note(normal("RolloutStarted", f"version {target.version}: {what} beside version {stable.version}"))
    assert record is not None
    return record


async def advance(run: ModelRun, target: ModelVersion, stable: ModelVersion) -> cond.State | Outcome:
    """One look at the Canary or Shadow of `target`: a state to report, PROMOTE or ROLLED_BACK."""
    strategy = run.resource.spec.serving.rollout.strategy
    previous = run.work.rollout
    record = _record(run, target, stable, strategy)
    if previous is not None and previous is not record and previous.phase == RolloutPhase.PROGRESSING:
        await remove_candidates(run)  # another strategy's candidate may still run (a spec change mid-rollout)
    if record.weight >= 100:  # promotion decided: the stable Deployment rolls to the candidate
        return Outcome.PROMOTE
    if strategy == RolloutStrategy.SHADOW:
        return await _shadow(run, target, stable, record)
    return await _canary(run, target, stable, record)


async def _canary(
    run: ModelRun, target: ModelVersion, stable: ModelVersion, record: RolloutStatus
) -> cond.State | Outcome:
    model, spec = run.resource, run.resource.spec.serving.rollout
    if record.step >= len(spec.steps) or spec.steps[record.step] >= 100:  # steps may shrink mid-rollout
        record.weight, record.message = 100, f"promoting version {target.version}: rolling the server to it"
        return Outcome.PROMOTE
    canary_n, stable_n = split(spec.steps[record.step], manifests.fewest_replicas(model))
    record.weight = round(100 * canary_n / (canary_n + stable_n))
    stable_replicas = stable_n if model.spec.serving.autoscaling is None else None
    ready = await _ensure_pair(run, target, stable, manifests.TRACK_CANARY, canary_n, stable_replicas)
    if isinstance(ready, str):
        return await _roll_back(run, target, record, ready)
    if ready is False:
        return _progressing(record, f"step {record.step + 1}: starting {canary_n} candidate pod(s)")
    step = _current_step(run, record, canary_n, stable_n)
    assert step.started_at is not None
    canary_name = manifests.candidate_deployment_name(model, manifests.TRACK_CANARY)
    candidate, champion = await asyncio.gather(
        _scrape(run, canary_name, manifests.candidate_selector(model, manifests.TRACK_CANARY)),
        _scrape(run, manifests.deployment_name(model), manifests.selector(model)),
    )
    step.candidate, step.champion = analysis.sample(candidate), analysis.sample(champion)
    judged = analysis.judge(
        spec.analysis, candidate, started=step.started_at, now=run.now, step_seconds=spec.step_duration_seconds
    )
    if judged.verdict == analysis.Verdict.ROLL_BACK:
        step.verdict, step.message, step.judged_at = judged.verdict, judged.message, run.now
        return await _roll_back(run, target, record, f"step {record.step + 1} ({record.weight}%): {judged.message}")
    if judged.verdict == analysis.Verdict.WAIT:
        run.wake_in(min(POLL_SECONDS, max(1.0, judged.wait_seconds)))
        return _progressing(record, f"step {record.step + 1} ({record.weight}% of pods): {judged.message}")
    step.verdict, step.message, step.judged_at = judged.verdict, judged.message, run.now
    run.note(normal("CanaryStepPromoted", f"version {target.version} step {record.step + 1}: {judged.message}"))
    record.step += 1
    run.wake_in(1.0)
    return _progressing(record, f"step {record.step} promoted: {judged.message}")


def _progressing(record: RolloutStatus, message: str) -> cond.State:
    record.message = message[:1024]
    return cond.State(cond.UNKNOWN, cond.Reason.ROLLING_OUT, f"version {record.candidate} {record.strategy}: {message}")


def _current_step(run: ModelRun, record: RolloutStatus, canary_n: int, stable_n: int) -> RolloutStep:
    """The record of the step in progress; it starts now (its candidate pods are all available)."""
    steps = record.steps
    if steps and steps[-1].step == record.step and steps[-1].verdict is None:
        return steps[-1]
    weight = run.resource.spec.serving.rollout.steps[record.step]
    step = RolloutStep(
        step=record.step, weight=weight, canary_replicas=canary_n, stable_replicas=stable_n, started_at=run.now
    )
    record.steps = [*steps, step][-MAX_STEP_RECORDS:]
    record.updated_at = run.now
    return step


async def _ensure_pair(
    run: ModelRun,
    target: ModelVersion,
    stable: ModelVersion,
    track: str,
    candidate_replicas: int,
    stable_replicas: int | None,
    stable_args: list[str] | None = None,
) -> bool | str:
    """Render the champion and the candidate: True when both are available, False while they start,
    a message when the candidate's rollout failed (crash loop, progress deadline)."""
    model, kube, ns, settings = run.resource, run.ctx.kube, run.key.namespace, run.ctx.settings
    await run.ctx.prepare_namespace(ns)
    champion = manifests.deployment(model, stable, settings, replicas=stable_replicas, extra_args=stable_args)
    candidate = manifests.candidate_deployment(model, target, settings, track, candidate_replicas)
    await kube.ensure(manifests.service(model))
    if track == manifests.TRACK_SHADOW:
        await kube.ensure(manifests.shadow_service(model))
    stable_action = await kube.ensure(champion)
    existing = await kube.get(DEPLOYMENT, ns, candidate["metadata"]["name"])
    action = await kube.ensure(candidate, existing)
    if action != "unchanged" or existing is None:
        return False
    pods = await kube.list(POD, ns, manifests.candidate_selector(model, track))
    state = observe.rollout(existing, observe.replica_set_pods(existing, pods))
    if state.state == observe.RolloutState.FAILED:
        return f"the candidate's pods failed ({state.reason}): {state.message}"
    if state.state != observe.RolloutState.COMPLETE or state.version != target.version:
        return False
    return stable_action == "unchanged" and await _stable_ready(run, stable)


async def _stable_ready(run: ModelRun, stable: ModelVersion) -> bool:
    kube, ns, model = run.ctx.kube, run.key.namespace, run.resource
    existing = await kube.get(DEPLOYMENT, ns, manifests.deployment_name(model))
    if existing is None:
        return False
    pods = await kube.list(POD, ns, manifests.selector(model))
    state = observe.rollout(existing, observe.replica_set_pods(existing, without_track(pods)))
    return state.state == observe.RolloutState.COMPLETE and state.version == stable.version


def without_track(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stable server's pods: a candidate's pods carry the track label (and their ReplicaSets'
    names start with the stable Deployment's name too)."""
    return [p for p in pods if manifests.LABEL_TRACK not in ((p.get("metadata") or {}).get("labels") or {})]


async def _scrape(run: ModelRun, deployment: str, selector: dict[str, str]) -> analysis.Scrape:
    """The counters of every pod of `deployment` (its ReplicaSets' pods among `selector`'s), added
    up; a pod that cannot be read is left out (and logged)."""
    kube, ns = run.ctx.kube, run.key.namespace
    listed = await kube.list(POD, ns, selector)
    if deployment == manifests.deployment_name(run.resource):
        listed = without_track(listed)
    pods = observe.replica_set_pods({"metadata": {"name": deployment}}, listed)
    running = [p for p in pods if (p.get("status") or {}).get("podIP")]
    texts = await asyncio.gather(*(pod_metrics(p, _port(p)) for p in running), return_exceptions=True)
    scrapes = []
    for pod, text in zip(running, texts, strict=True):
        name = pod["metadata"]["name"]
        if isinstance(text, BaseException):
            if not isinstance(text, ScrapeError):
                raise text
            run.ctx.logger.info("%s: cannot read the metrics of pod %s: %s", run.key, name, text)
            continue
        try:
            scrapes.append(analysis.parse(text))
        except ValueError as exc:
            run.ctx.logger.info("%s: pod %s's /metrics is not Prometheus text: %s", run.key, name, exc)
    return analysis.total(scrapes)


def _port(pod: dict[str, Any]) -> int:
    """The server container's `http` port (what the pod template declares)."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == manifests.PORT_NAME:
                return int(port["containerPort"])
    return contracts.SERVER_PORT


async def _roll_back(run: ModelRun, target: ModelVersion, record: RolloutStatus, why: str) -> Outcome:
    """The candidate broke a bound or failed to start: it goes, the champion keeps (and regains) every pod."""
    model = run.resource
    await remove_candidates(run)
    record.phase, record.message, record.updated_at = RolloutPhase.ROLLED_BACK, why[:1024], run.now
    versions.roll_back(target, cond.Reason.ANALYSIS_FAILED, why, run.now)
    run.ctx.metrics.rollout_failures.labels(run.key.namespace, model.name).inc()
    message = f"version {target.version} rolled back ({record.strategy}): {why}; version {record.stable} keeps serving"
    run.note(warning(cond.Reason.ROLLED_BACK, message))
    return Outcome.ROLLED_BACK


async def remove_candidates(run: ModelRun) -> None:
    """Delete the Canary and Shadow objects this Model controls (by name, with a uid precondition)."""
    kube, ns, model = run.ctx.kube, run.key.namespace, run.resource
    for track in (manifests.TRACK_CANARY, manifests.TRACK_SHADOW):
        await kube.delete_owned(DEPLOYMENT, ns, manifests.candidate_deployment_name(model, track), model.uid)
    await kube.delete_owned(SERVICE, ns, manifests.shadow_service_name(model), model.uid)


async def finish(run: ModelRun, target: ModelVersion) -> None:
    """The promoted candidate serves from the stable Deployment: the rollout ends, the candidates go."""
    record = run.work.rollout
    if record is None or record.phase != RolloutPhase.PROGRESSING:
        return
    await remove_candidates(run)
    if record.candidate == target.version:
        record.phase, record.step, record.weight = (
            RolloutPhase.PROMOTED,
            len(run.resource.spec.serving.rollout.steps) - 1,
            100,
        )
        record.message = f"version {target.version} promoted after {record.strategy}"
    else:  # another version was chosen meanwhile (a rollback, a person's approval)
        record.phase, record.message = RolloutPhase.ROLLED_BACK, f"superseded: version {target.version} serves"
    record.updated_at = run.now


async def _shadow(
    run: ModelRun, target: ModelVersion, stable: ModelVersion, record: RolloutStatus
) -> cond.State | Outcome:
    model, spec, kube, ns = run.resource, run.resource.spec.serving.rollout, run.ctx.kube, run.key.namespace
    await kube.ensure(manifests.shadow_service(model))
    name = manifests.shadow_service_name(model)
    service = await kube.get(SERVICE, ns, name) or await kube.get(SERVICE, ns, name, fresh=True)
    if service is None or not (service.get("spec") or {}).get("clusterIP"):
        run.wake_in(1.0)
        return _progressing(record, "creating the shadowed candidate's Service")
    args = [
        MIRROR_FLAG,
        manifests.shadow_url(service),
        MIRROR_SAMPLE_FLAG,
        str(spec.shadow.sample_percent),
        MIRROR_VERSION_FLAG,
        str(target.version),
        MIRROR_DIFF_FLAG,
        str(spec.shadow.max_abs_diff),
    ]
    ready = await _ensure_pair(run, target, stable, manifests.TRACK_SHADOW, 1, None, args)
    if isinstance(ready, str):
        return await _roll_back(run, target, record, ready)
    if ready is False:
        return _progressing(record, "starting the shadowed candidate and the mirroring champion")
    champion = await _scrape(run, manifests.deployment_name(model), manifests.selector(model))
    record.shadow = analysis.agreement(champion)
    record.shadow.live_quality = await shadow_scores.labelled_scores(run, target.version)  # informational
    record.updated_at = run.now
    judged = analysis.judge_shadow(spec.shadow, record.shadow, spec.analysis.max_error_rate)
    if judged.verdict == analysis.Verdict.ROLL_BACK:
        return await _roll_back(run, target, record, judged.message)
    if judged.verdict == analysis.Verdict.WAIT:
        run.wake_in(POLL_SECONDS)
        return _progressing(record, judged.message)
    run.note(normal("ShadowPassed", f"version {target.version}: {judged.message}"))
    record.message, record.weight = f"promoting: {judged.message}", 100
    return Outcome.PROMOTE
