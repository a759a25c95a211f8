"""Every workload pod the builders render, by role, from one Settings (shared by unit and contract tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mlops_operator.api.v1alpha1.model import ModelVersion, VersionState
from mlops_operator.builders import jobs, serving
from mlops_operator.settings import Settings
from tests.unit import factories as f

TICK = datetime(2026, 1, 2, 3, 0, 0, tzinfo=UTC)
SERVED = ModelVersion(version=3, state=VersionState.APPROVED, artifact_uri="s3://b/m/model.skops", sha256="a" * 64)
# The pods that read or write the store, and the one that must not.
STORE_ROLES = ("profile", "train", "train-custom-image", "serve", "drift", "registry")
ROLES = (*STORE_ROLES, "notify")
# The pods a spec places (the registry and notify Jobs take the operator's defaults only).
PLACED_ROLES = ("profile", "train", "train-custom-image", "serve", "drift")


def _training(
    settings: Settings, resources: dict[str, Any] | None, image: str | None, placement: dict[str, Any]
) -> dict[str, Any]:
    trainer: dict[str, Any] = {"image": image} if image else {"estimator": "sklearn.linear_model.LogisticRegression"}
    trainer |= placement
    if resources is not None:
        trainer["resources"] = resources
    model = f.model(trainer=trainer)
    return f.training_job(model, f.training_plan(model, settings, data_uri="s3://b/d"), settings)


def render(
    settings: Settings, resources: dict[str, Any] | None = None, placement: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """The pod template of each role; `resources` (a spec's resources, as a user writes them) and
    `placement` (nodeSelector, tolerations, … as a user writes them) go into every spec that has them
    (the registry and notify Jobs have neither)."""
    spec_resources: dict[str, Any] = {} if resources is None else {"resources": resources}
    spec_resources |= placement or {}
    serving_spec: dict[str, Any] = {"serving": spec_resources} if spec_resources else {}
    monitor = f.monitor(action={"webhook": {"secretRef": {"name": "hooks", "key": "url"}}}, **spec_resources)
    drift_plan = jobs.drift_plan(monitor, tick=TICK, profile_uri="s3://b/p.json", settings=settings)
    objects = {
        "profile": jobs.profile_job(f.dataset(**spec_resources), settings, 0),
        "train": _training(settings, resources, None, placement or {}),
        "train-custom-image": _training(settings, resources, "registry.example/trainer:1", placement or {}),
        "serve": serving.deployment(f.model(**serving_spec), SERVED, settings),
        "drift": jobs.drift_job(monitor, drift_plan, TICK, settings),
        "registry": jobs.registry_job(f.model(), [SERVED], settings),
        "notify": jobs.notify_job(monitor, {"text": "x"}, TICK, settings),
    }
    return {role: obj["spec"]["template"] for role, obj in objects.items()}


def container(template: dict[str, Any]) -> dict[str, Any]:
    (only,) = template["spec"]["containers"]
    result: dict[str, Any] = only
    return result


def env_values(template: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(template)["env"] if "value" in e}
