"""The registry mirror: a small Job copies the ledger of versions to the store's `registry.json`.

The operator never mounts the store (each team's namespace does), so a Job writes it. The Job is
named after the content it writes (and the Model's uid), so a crash and retry finds it instead of
writing twice; one runs at a time per Model, later changes wait for it (its completion wakes the
Model) and are written together. The first mirror of a Model is also a read: a Model that has no
versions while the store has some (recreated, restored from a backup without status) is rebuilt.
"""

from __future__ import annotations

from typing import Any

from mlops_operator import contracts
from mlops_operator.api.results import RegistryResult
from mlops_operator.api.v1alpha1.model import RegistryMirror
from mlops_operator.builders import jobs
from mlops_operator.reconcilers import observe
from mlops_operator.reconcilers.context import normal, warning
from mlops_operator.reconcilers.model import versions
from mlops_operator.reconcilers.model.children import ModelRun


def _name(job: dict[str, Any]) -> str:
    return str(job["metadata"]["name"])


async def observe_mirror(run: ModelRun, mirror_jobs: list[dict[str, Any]]) -> None:
    """Record the mirror Job of the current versions once it finished; rebuild an empty status from it."""
    work, model = run.work, run.resource
    digest = jobs.registry_digest(work.versions)
    if work.registry is not None and work.registry.digest == digest:
        return
    name = jobs.registry_job_name(model, digest)
    job = next((j for j in mirror_jobs if _name(j) == name), None)
    if job is None or observe.job_phase(job).active:
        return
    pods = await run.ctx.kube.job_pods(job)
    outcome = observe.job_outcome(job, pods, RegistryResult, jobs.WORKLOAD_CONTAINER)
    previous = work.registry
    if outcome.phase != observe.JobPhase.SUCCEEDED or outcome.result is None:
        message = f"mirroring the registry to the store failed ({outcome.reason}): {outcome.message}"[:1024]
        if previous is None or previous.message != message:
            run.note(warning("RegistryMirrorFailed", f"Job {name}: {message}"))
        work.registry = (previous or RegistryMirror()).model_copy(update={"job": name, "message": message})
        return
    result = outcome.result
    work.registry = RegistryMirror(
        digest=digest,
        job=name,
        synced_at=run.now,
        stored=result.stored,
        restored=previous.restored if previous else None,
    )
    if previous is None and not work.versions and result.highest_version:
        _restore(run, result)


def _restore(run: ModelRun, result: RegistryResult) -> None:
    """Rebuild the versions of a Model without status from the store's newest records."""
    work = run.work
    assert work.registry is not None and result.highest_version
    work.versions, work.latest_version = versions.restore(
        result.versions, result.highest_version, run.resource.spec.max_versions, run.now
    )
    newest = versions.latest(work.versions, finished=True)
    work.trained_dataset_version = newest.dataset_version if newest else None
    work.registry.restored = len(work.versions)
    next_version = work.latest_version + 1 if work.latest_version else 1
    run.note(
        normal(
            "RegistryRestored",
            f"rebuilt {len(work.versions)} versions from the store (highest: {result.highest_version}); "
            f"the next version is {next_version}",
        )
    )


async def start_mirror(run: ModelRun, mirror_jobs: list[dict[str, Any]]) -> None:
    """After the status patch: a Job that writes the recorded versions to the store, one at a time.

    Superseded finished mirror Jobs are removed.
    """
    work, model, kube, ns = run.work, run.resource, run.ctx.kube, run.key.namespace
    digest = jobs.registry_digest(work.versions)
    wanted = jobs.registry_job_name(model, digest)
    keep = {wanted, work.registry.job if work.registry else None}
    for job in mirror_jobs:
        if _name(job) not in keep and not observe.job_phase(job).active:
            await kube.delete_child(job, model.uid)
    if work.registry is not None and work.registry.digest == digest:
        return
    if any(_name(j) == wanted for j in mirror_jobs):
        return
    if any(observe.job_phase(j).active for j in mirror_jobs):
        return
    await run.ctx.prepare_namespace(ns)
    await kube.create_or_adopt(jobs.registry_job(model, work.versions, run.ctx.settings))
    run.ctx.metrics.jobs_created.labels(contracts.Component.REGISTRY).inc()
