"""Typed custom resources for unit tests, as a user would write them (then parsed like the operator does)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mlops_operator.api.plans import TrainingPlan
from mlops_operator.api.v1alpha1 import Dataset, DriftMonitor, Model
from mlops_operator.builders import jobs
from mlops_operator.settings import Settings

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SETTINGS = Settings(
    image="localhost/mlops-operator:test", store_uri="file:///var/lib/mlops", store_claim="mlops-artifacts"
)


def _meta(
    name: str, uid: str, generation: int = 1, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "team-a", "uid": uid, "generation": generation}
    if annotations:
        meta["annotations"] = annotations
    return meta


def dataset(name: str = "iris", **spec: Any) -> Dataset:
    body = {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": _meta(name, "11111111-1111-1111-1111-111111111111"),
        "spec": {"source": {"uri": "sklearn://iris"}, "schema": {"target": "target"}, **spec},
    }
    return Dataset.model_validate(body)


def model(
    name: str = "iris-clf",
    *,
    generation: int = 1,
    annotations: dict[str, str] | None = None,
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> Model:
    body: dict[str, Any] = {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "Model",
        "metadata": _meta(name, "22222222-2222-2222-2222-222222222222", generation, annotations),
        "spec": {
            "datasetRef": {"name": "iris"},
            "trainer": {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 200}},
            **spec,
        },
    }
    if status is not None:
        body["status"] = status
    return Model.model_validate(body)


def monitor(name: str = "iris-drift", **spec: Any) -> DriftMonitor:
    body = {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": _meta(name, "33333333-3333-3333-3333-333333333333"),
        "spec": {"modelRef": {"name": "iris-clf"}, **spec},
    }
    return DriftMonitor.model_validate(body)


def training_plan(
    model_: Model,
    settings: Settings = SETTINGS,
    *,
    version: int = 1,
    target: str = "target",
    dataset_version: str = "v",
    data_uri: str = "file:///d",
) -> TrainingPlan:
    """The plan of a Model's first training: no champion, trigger initial."""
    return jobs.training_plan(
        model_,
        version=version,
        target=target,
        dataset_version=dataset_version,
        data_uri=data_uri,
        champion=None,
        trigger="initial",
        settings=settings,
    )


def training_job(model_: Model, plan: TrainingPlan, settings: Settings = SETTINGS) -> dict[str, Any]:
    return jobs.training_job(model_, plan, jobs.training_request("h", "v", None), settings)
