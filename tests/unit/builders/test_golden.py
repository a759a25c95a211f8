"""Every manifest the operator can render, compared with its golden YAML."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mlops_operator.api.plans import ChampionRef
from mlops_operator.api.v1alpha1.model import ModelVersion, VersionState
from mlops_operator.api.v1alpha1.pods import PodOptions
from mlops_operator.builders import jobs, serving
from mlops_operator.settings import Settings, StoreEnv
from tests.unit import factories as f

Golden = Callable[[str, Any], None]
AZURE = Settings(store_uri="az://ml/store", store_claim="", store_env=StoreEnv(azure_storage_account_name="mlopsacct"))
TICK = datetime(2026, 1, 2, 3, 0, 0, tzinfo=UTC)
SERVED = ModelVersion(
    version=3,
    state=VersionState.APPROVED,
    artifact_uri="file:///var/lib/mlops/team-a/models/iris-clf/v3/model.skops",
    sha256="a" * 64,
)


def test_profile_job(golden: Golden) -> None:
    golden("profile-job", jobs.profile_job(f.dataset(refreshIntervalSeconds=600), f.SETTINGS, tick=42))


def training_job(
    model_: Any,
    champion: ChampionRef | None,
    settings: Settings = f.SETTINGS,
    *,
    retrain_request: str | None = None,
    trigger: str = "initial",
    production: Any = None,
) -> dict[str, Any]:
    """The rendered training Job of version 4 on dataset version d…d (the fixtures every golden shares)."""
    request = jobs.training_request(jobs.training_spec_hash(model_), "d" * 64, retrain_request) | {"version": "4"}
    plan = jobs.training_plan(
        model_,
        version=4,
        target="target",
        dataset_version="d" * 64,
        data_uri="file:///var/lib/mlops/team-a/datasets/iris/" + "d" * 64 + "/data.parquet",
        champion=champion,
        trigger=trigger,
        settings=settings,
        production=production,
    )
    return jobs.training_job(model_, plan, request, settings)


def testtraining_job(golden: Golden) -> None:
    golden("training-job", training_job(f.model(), None))


def test_training_job_custom_image_with_champion(golden: Golden) -> None:
    model_ = f.model(trainer={"image": "registry.example/trainer:1.0", "command": ["python", "/app/train.py"]})
    champion = ChampionRef(version=3, artifact_uri=SERVED.artifact_uri or "", sha256="a" * 64)
    golden(
        "training-job-custom-image",
        # an object store: no claim, and the store's account reaches the pod as a value
        training_job(model_, champion, AZURE),
    )


# The operator's defaults for every workload pod (MLOPS_IMAGE_PULL_SECRETS, _NODE_SELECTOR,
# _TOLERATIONS): a spec's own field replaces its default, the others stay.
STEERED = Settings(
    image="localhost/mlops-operator:test",
    store_uri="file:///var/lib/mlops",
    store_claim="mlops-artifacts",
    pod_defaults=PodOptions.model_validate(
        {
            "imagePullSecrets": [{"name": "registry-creds"}],
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}],
        }
    ),
)


def test_training_job_on_a_gpu_node(golden: Golden) -> None:
    """One GPU, 4Gi requested without limits (cpu and memory limits: the defaults raised to the
    requests; the GPU's: its request); the GPU pool's node selector and taint replace the defaults,
    the pull secret is the operator's."""
    model_ = f.model(
        trainer={
            "estimator": "sklearn.neural_network.MLPClassifier",
            "resources": {"requests": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}},
            "nodeSelector": {"nvidia.com/gpu.present": "true"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "priorityClassName": "ml-training",
        }
    )
    golden("training-job-gpu", training_job(model_, None, STEERED))


def test_server_deployment_spread_over_nodes_with_a_disruption_budget(golden: Golden) -> None:
    model_ = f.model(
        serving={
            "replicas": 3,
            "affinity": {
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 100,
                            "podAffinityTerm": {
                                "labelSelector": {"matchLabels": {"mlops.dev/model": "iris-clf"}},
                                "topologyKey": "kubernetes.io/hostname",
                            },
                        }
                    ]
                }
            },
            "tolerations": [],  # none of the operator's: servers stay off the dedicated ML nodes
            "disruptionBudget": {"maxUnavailable": 1},
        }
    )
    golden("server-deployment-affinity", serving.deployment(model_, SERVED, STEERED))
    golden("server-pdb", serving.disruption_budget(model_))


def test_drift_job(golden: Golden) -> None:
    monitor = f.monitor(windowSeconds=1800, features=[{"name": "petal_width", "test": "psi", "threshold": 0.2}])
    plan = jobs.drift_plan(monitor, tick=TICK, profile_uri="file:///var/lib/mlops/p.json", settings=f.SETTINGS)
    golden("drift-job", jobs.drift_job(monitor, plan, TICK, f.SETTINGS))


def test_notify_job(golden: Golden) -> None:
    monitor = f.monitor(action={"webhook": {"secretRef": {"name": "hooks", "key": "slack"}}})
    payload = jobs.webhook_payload(
        monitor,
        verdict="Drift",
        drifted_features=["petal_width"],
        drifted_share=0.25,
        report_uri=None,
        tick=TICK,
    )
    golden("notify-job", jobs.notify_job(monitor, payload, TICK, f.SETTINGS))


def test_server_deployment(golden: Golden) -> None:
    golden("server-deployment", serving.deployment(f.model(), SERVED, f.SETTINGS))


def test_server_deployment_with_autoscaling_and_no_collection(golden: Golden) -> None:
    model_ = f.model(serving={"autoscaling": {"minReplicas": 2, "maxReplicas": 5}, "collection": {"enabled": False}})
    golden("server-deployment-hpa", serving.deployment(model_, SERVED, f.SETTINGS))
    golden("server-hpa", serving.hpa(model_))


def test_server_deployment_with_an_inference_token(golden: Golden) -> None:
    model_ = f.model(serving={"auth": {"tokenSecretRef": {"name": "iris-token", "key": "bearer"}}})
    golden("server-deployment-auth", serving.deployment(model_, SERVED, f.SETTINGS))


def test_server_service(golden: Golden) -> None:
    golden("server-service", serving.service(f.model()))


def test_namespace_prerequisites(golden: Golden) -> None:
    from mlops_operator.builders import namespace

    settings = Settings(
        serving_service_account="mlops-serving", store_storage_class="mlops-local", azure_client_id="0000-client"
    )
    golden("namespace-prerequisites", namespace.prerequisites("team-a", settings))


def test_registry_job(golden: Golden) -> None:
    golden("registry-job", jobs.registry_job(f.model(), [SERVED], f.SETTINGS))
