"""Step 3 of a Model's reconcile: read what it depends on and what it owns.

A Model deleted and created again under the same name finds its predecessor's Jobs until the
garbage collector has removed them: they are not this object's history, so only Jobs owned by this
object (by uid) count.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from mlops_operator import contracts
from mlops_operator.api.v1alpha1.model import Model, ModelStatus
from mlops_operator.kube import DATASET, JOB
from mlops_operator.reconcilers.skeleton import Run

ModelRun = Run[Model, ModelStatus]


@dataclass(frozen=True)
class Children:
    dataset: dict[str, Any] | None  # the Dataset of spec.datasetRef, as read
    train_jobs: list[dict[str, Any]]
    mirror_jobs: list[dict[str, Any]]  # the Jobs that write the versions to the store's registry.json
    events_jobs: list[dict[str, Any]]  # the notify Jobs that deliver release events (model/events.py)


async def read(run: ModelRun) -> Children:
    kube, ns = run.ctx.kube, run.key.namespace
    dataset, model_jobs = await asyncio.gather(
        kube.get(DATASET, ns, run.resource.spec.dataset_ref.name),
        kube.list(JOB, ns, {contracts.LABEL_MODEL: run.key.name}),
    )
    owned = [j for j in model_jobs if _owned_by(j, run.body["metadata"].get("uid"))]
    return Children(
        dataset=dataset,
        train_jobs=[j for j in owned if _component(j) == contracts.Component.TRAIN],
        mirror_jobs=[j for j in owned if _component(j) == contracts.Component.REGISTRY],
        events_jobs=[j for j in owned if _component(j) == contracts.Component.EVENTS],
    )


def _owned_by(child: dict[str, Any], uid: str | None) -> bool:
    return any(ref.get("uid") == uid for ref in child["metadata"].get("ownerReferences") or [])


def _component(job: dict[str, Any]) -> str:
    return str((job["metadata"].get("labels") or {}).get(contracts.LABEL_COMPONENT, ""))
