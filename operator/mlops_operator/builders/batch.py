"""A BatchScoring run's Indexed Job and the plan its pods share. Pure: typed spec in, dicts out.

The Job is the same as every other Job of the operator (owner reference, TTL, deadline, restricted
pod, the store's mount or credentials, the administrator's resource limits: builders.jobs and
builders.pods), plus the Indexed Job's fields:

- `completionMode: Indexed`, `completions` = spec.shards: pod i gets JOB_COMPLETION_INDEX=i and scores
  the i-th range of rows; `parallelism` = spec.parallelism (all shards by default);
- `backoffLimitPerIndex` = spec.backoffLimitPerIndex: a failed shard is retried on its own, the shards
  that succeeded are not run again; `maxFailedIndexes` = spec.maxFailedIndexes: past that many shards
  failed for good, the Job stops (Failed, reason MaxFailedIndexesExceeded);
- the pod failure policy: disruptions (eviction, preemption, a drained node) are not counted against a
  shard's retries; a data, spec or integrity error (the reserved exit codes) fails that shard at once
  (FailIndex): retrying cannot fix it, and the other shards still score their rows.

The Job's name is `<name>-batch-<hash8>` of the run's identity (the spec, the model version, the
input and, for a schedule, the cron time): a retried reconcile finds the same Job, never a second one.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from mlops_operator import contracts
from mlops_operator.api.batch import BatchScorePlan
from mlops_operator.api.v1alpha1.batchscoring import MAX_SHARDS, BatchScoring
from mlops_operator.builders import jobs, limits, meta, pods
from mlops_operator.settings import Settings

SUFFIX = "batch"
INDEX_ROOM = len(f"-{MAX_SHARDS - 1}")  # an Indexed Job's pod hostname: <job name>-<index>


def spec_hash(batch: BatchScoring) -> str:
    """The spec's fields that shape a run (not runsToKeep, which only trims the history)."""
    spec = batch.spec.dump()
    spec.pop("runsToKeep", None)
    spec["resources"] = limits.hashable_resources(spec["resources"])
    return meta.hash8(spec)


def run_identity(
    batch: BatchScoring, *, version: int, input_uri: str, dataset_version: str | None, tick: datetime | None
) -> dict[str, str]:
    return {
        "spec": spec_hash(batch),
        "version": str(version),
        "input": input_uri,
        "dataset": dataset_version or "",
        "tick": tick.isoformat() if tick else "",
    }


def job_name(batch: BatchScoring, identity: dict[str, str]) -> str:
    """Short enough that the pods' hostnames, `<job>-<index>`, stay within 63 characters too."""
    return meta.child_name(batch.name, SUFFIX, meta.hash8(identity), limit=meta.MAX_NAME - INDEX_ROOM)


def output_dir(batch: BatchScoring, run: str, settings: Settings) -> str:
    return contracts.batch_run_dir(settings.store_uri, batch.namespace, batch.spec.model_ref.name, batch.name, run)


def batch_plan(
    batch: BatchScoring,
    *,
    version: int,
    artifact_uri: str,
    sha256: str,
    input_uri: str,
    output: str,
    settings: Settings,
) -> BatchScorePlan:
    spec = batch.spec
    return BatchScorePlan(
        namespace=batch.namespace,
        batch=batch.name,
        model=spec.model_ref.name,
        version=version,
        artifact_uri=artifact_uri,
        sha256=sha256,
        input_uri=input_uri,
        key_columns=list(spec.input.key_columns),
        shards=spec.shards,
        chunk_rows=spec.chunk_rows,
        output_dir=output,
        store_uri=settings.store_uri,
    )


def batch_job(
    batch: BatchScoring, plan: BatchScorePlan, name: str, settings: Settings, tick: datetime | None = None
) -> dict[str, Any]:
    spec = batch.spec
    args = ["batch-score", contracts.PLAN_FLAG, json.dumps(plan.dump(), sort_keys=True, separators=(",", ":"))]
    container = pods.workload_container(jobs.WORKLOAD_CONTAINER, args, settings, spec.resources)
    job = jobs._job(
        name,
        batch,
        contracts.Component.BATCH_SCORE,
        container,
        settings,
        backoff_limit=0,  # replaced below: the retries are per index
        deadline_seconds=spec.active_deadline_seconds,
        extra_labels={contracts.LABEL_MODEL_VERSION: str(plan.version)},
        annotations={contracts.ANNOTATION_SCHEDULED_TICK: tick.isoformat()} if tick else None,
        options=spec,
    )
    job_spec = job["spec"]
    del job_spec["backoffLimit"]  # with backoffLimitPerIndex the API server defaults it to "unlimited"
    for rule in job_spec["podFailurePolicy"]["rules"]:
        if rule["action"] == "FailJob":
            rule["action"] = "FailIndex"
    job_spec |= {
        "completionMode": "Indexed",
        "completions": spec.shards,
        "parallelism": spec.parallelism or spec.shards,
        "backoffLimitPerIndex": spec.backoff_limit_per_index,
        "maxFailedIndexes": spec.max_failed_indexes,
    }
    return job


__all__ = ["batch_job", "batch_plan", "job_name", "output_dir", "run_identity", "spec_hash"]
