"""The generated CRDs on a real kube-apiserver: valid resources are accepted, invalid ones are
rejected at admission with a message that says what to fix."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

GROUP, VERSION = "mlops.dev", "v1alpha1"


def custom_object(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}


DATASET = custom_object(
    "Dataset",
    "cancer",
    {
        "source": {"uri": "sklearn://breast_cancer"},
        "schema": {"target": "target"},
        "quality": {"maxMissingFraction": 0.1, "duplicates": "warn", "outliers": {"method": "iqr"}},
    },
)
MODEL = custom_object(
    "Model",
    "cancer-lr",
    {
        "datasetRef": {"name": "cancer"},
        "trainer": {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": 1.0, "max_iter": 500}},
        "validation": {"metric": "accuracy", "threshold": 0.9},
        "approval": {"policy": "Automatic"},
    },
)
MONITOR = custom_object(
    "DriftMonitor",
    "cancer-drift",
    {"modelRef": {"name": "cancer-lr"}, "schedule": {"intervalSeconds": 60}, "minSamples": 50},
)
BATCH = custom_object(
    "BatchScoring",
    "cancer-nightly",
    {"modelRef": {"name": "cancer-lr"}, "input": {"datasetRef": {"name": "cancer"}}, "shards": 4},
)
PLURALS = {"Dataset": "datasets", "Model": "models", "DriftMonitor": "driftmonitors", "BatchScoring": "batchscorings"}


def create(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[body["kind"]], body, field_validation="Strict"
    )
    return result


def with_changes(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(base)
    *parents, leaf = path.split(".")
    node = body
    for key in parents:
        node = node.setdefault(key, {})
    if value is DELETE:
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return body


DELETE = object()


@pytest.mark.usefixtures("crds_installed")
def test_valid_resources_are_accepted(api_client: client.ApiClient, namespace: str) -> None:
    for body in (DATASET, MODEL, MONITOR, BATCH):
        created = create(api_client, namespace, body)
        assert created["metadata"]["uid"]


INVALID = [
    (MODEL, "spec.trainer.estimator", DELETE, "set exactly one of trainer.estimator or trainer.image"),
    (MODEL, "spec.trainer.image", "localhost/trainer:1", "set exactly one of trainer.estimator or trainer.image"),
    (MODEL, "spec.task", "regression", "validation.metric must fit the task"),
    (MODEL, "spec.approvedVersion", 2, "only meaningful with approval.policy Manual"),
    (
        MODEL,
        "spec.serving",
        {"autoscaling": {"minReplicas": 3, "maxReplicas": 2}},
        "maxReplicas must be >= minReplicas",
    ),
    (
        MODEL,
        "spec.serving",
        {"rollout": {"strategy": "Canary", "steps": [50, 10, 100]}},
        "rollout.steps must be increasing percentages and end with 100",
    ),
    (
        MODEL,
        "spec.serving",
        {"rollout": {"strategy": "Canary", "steps": [10, 50]}},
        "rollout.steps must be increasing percentages and end with 100",
    ),
    (MODEL, "spec.serving", {"rollout": {"steps": [0, 100]}}, "spec.serving.rollout.steps[0]"),
    (MODEL, "spec.trainer.estimator", "os.system; rm -rf /", "spec.trainer.estimator"),
    (MODEL, "spec.trainer.testSize", 0.95, "spec.trainer.testSize"),
    (MODEL, "spec.validation.metric", "precision_at_k", "Unsupported value"),
    (MODEL, "spec.datasetRef", DELETE, "spec.datasetRef: Required value"),
    (MODEL, "spec.trainer.tpyo", 1, 'unknown field "spec.trainer.tpyo"'),
    (DATASET, "spec.source.uri", "http://example.com/data.csv", "spec.source.uri"),
    (DATASET, "spec.quality.maxMissingFraction", 1.5, "spec.quality.maxMissingFraction"),
    (DATASET, "spec.quality.duplicates", "ignore", "Unsupported value"),
    (DATASET, "spec.source.uri", "file:///" + "x" * 2000, "Too long"),
    (
        MONITOR,
        "spec.schedule",
        {"intervalSeconds": 60, "cron": "*/5 * * * *"},
        "exactly one of intervalSeconds or cron",
    ),
    (MONITOR, "spec.driftShare", 0, "spec.driftShare"),
    (MONITOR, "spec.modelRef.name", "Not_A_Name", "spec.modelRef.name"),
    # resources: extended resource names and whole devices; requests within limits
    (MODEL, "spec.trainer.resources", {"requests": {"nvidia.com/gpu": "0.5"}}, "a whole number of devices"),
    (MODEL, "spec.trainer.resources", {"requests": {"GPU": "1"}}, "keys must match"),
    (DATASET, "spec.resources", {"limits": {"example.kubernetes.io/x": "1"}}, "kubernetes.io names"),
    (
        MODEL,
        "spec.serving.resources",
        {"requests": {"memory": "4Gi"}, "limits": {"memory": "1Gi"}},
        "a request may not exceed its limit",
    ),
    (
        MODEL,
        "spec.trainer.resources",
        {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "2"}},
        "cannot be overcommitted",
    ),
    # placement
    (MODEL, "spec.trainer.tolerations", [{"value": "x"}], "a toleration without a key needs operator Exists"),
    (DATASET, "spec.tolerations", [{"key": "a", "operator": "Exists", "value": "x"}], "operator Exists takes no value"),
    (
        MONITOR,
        "spec.tolerations",
        [{"key": "a", "effect": "NoSchedule", "tolerationSeconds": 60}],
        "tolerationSeconds is only for effect NoExecute",
    ),
    (MODEL, "spec.serving.nodeSelector", {"not a key": "x"}, "keys must match"),
    (MODEL, "spec.serving.priorityClassName", "system-node-critical", "system- priority classes"),
    (
        MODEL,
        "spec.trainer.affinity",
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "gpu-memory", "operator": "Gt", "values": ["lots"]}]}
                    ]
                }
            }
        },
        "Gt and Lt take one integer",
    ),
    (
        MODEL,
        "spec.serving.affinity",
        {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]},
                    }
                ]
            }
        },
        "In and NotIn need values",
    ),
    # the server's disruption budget
    (MODEL, "spec.serving.disruptionBudget", {}, "set exactly one of minAvailable or maxUnavailable"),
    (MODEL, "spec.serving.disruptionBudget", {"minAvailable": 1, "maxUnavailable": 1}, "set exactly one"),
    (MODEL, "spec.serving.disruptionBudget", {"minAvailable": "100%"}, "a percentage below 100%"),
    (MODEL, "spec.serving.disruptionBudget", {"maxUnavailable": 0}, "maxUnavailable is a number of pods (1-100)"),
    (MODEL, "spec.serving.disruptionBudget", {"maxUnavailable": "half"}, "maxUnavailable is a number of pods"),
    # retention and the inference token (issue 12 finding 4)
    (MODEL, "spec.serving.collection.retentionDays", 0, "spec.serving.collection.retentionDays"),
    (MONITOR, "spec.retention.reports", 0, "spec.retention.reports"),
    (DATASET, "spec.retention.versions", 0, "spec.retention.versions"),
    (DATASET, "spec.retention.versions", 1001, "spec.retention.versions"),
    (MODEL, "spec.serving.auth", {}, "spec.serving.auth.tokenSecretRef: Required value"),
    (MODEL, "spec.serving.auth", {"tokenSecretRef": {"name": "Bad_Name", "key": "t"}}, "tokenSecretRef.name"),
    # metadata.name: a DNS-1035 label (a Model's name is its Service's) that leaves room for the
    # longest suffix the operator appends to it (tests/contract/test_child_names.py)
    (MODEL, "metadata.name", "1st-model", "metadata.name: Invalid value: metadata.name must be at most 45"),
    (MODEL, "metadata.name", "m" * 46, "metadata.name must be at most 45 characters"),
    (MODEL, "metadata.name", "cancer.lr", "start with a letter and end with a letter or digit"),
    (DATASET, "metadata.name", "d" * 47, "metadata.name must be at most 46 characters"),
    (MONITOR, "metadata.name", "w" * 42, "metadata.name must be at most 41 characters"),
    # BatchScoring: one input, a dataset version only with its Dataset, no more failed shards than shards
    (BATCH, "metadata.name", "b" * 45, "metadata.name must be at most 44 characters"),
    (BATCH, "spec.input.uri", "s3://ml/store/team-a/in/", "input needs exactly one of datasetRef and uri"),
    (BATCH, "spec.input", {"keyColumns": ["id"]}, "input needs exactly one of datasetRef and uri"),
    (BATCH, "spec.input", {"uri": "s3://b/", "datasetVersion": "abc"}, "input.datasetVersion needs input.datasetRef"),
    (BATCH, "spec.maxFailedIndexes", 5, "maxFailedIndexes cannot exceed shards"),
    (BATCH, "spec.shards", 1001, "spec.shards"),
    (BATCH, "spec.schedule", "every night", "spec.schedule"),
]


@pytest.mark.usefixtures("crds_installed")
@pytest.mark.parametrize(
    ("base", "path", "value", "message"), INVALID, ids=[f"{b['kind']}:{p}" for b, p, *_ in INVALID]
)
def test_invalid_resources_are_rejected_with_a_message(
    api_client: client.ApiClient, namespace: str, base: dict[str, Any], path: str, value: Any, message: str
) -> None:
    with pytest.raises(ApiException) as raised:
        create(api_client, namespace, with_changes(base, path, value))
    assert raised.value.status in (400, 422)
    reason = json.loads(raised.value.body)["message"]
    # a CEL rule on the whole object: 'Invalid value: "object": …' before Kubernetes 1.35, no value since
    assert message in reason.replace('Invalid value: "object": ', "Invalid value: "), reason


@pytest.mark.usefixtures("crds_installed")
@pytest.mark.parametrize(
    ("base", "size"), [(DATASET, 46), (MODEL, 45), (MONITOR, 41)], ids=["Dataset", "Model", "DriftMonitor"]
)
def test_the_longest_name_allowed_is_accepted(
    api_client: client.ApiClient, namespace: str, base: dict[str, Any], size: int
) -> None:
    name = ("n-" * size)[: size - 1] + "0"
    assert create(api_client, namespace, with_changes(base, "metadata.name", name))["metadata"]["name"] == name


@pytest.mark.usefixtures("crds_installed")
def test_approved_version_without_a_policy_meets_the_default_automatic_policy(
    api_client: client.ApiClient, namespace: str
) -> None:
    """spec.approval defaults to {policy: Automatic} now, so the CEL rule sees the policy pydantic applies."""
    body = with_changes(with_changes(MODEL, "spec.approval", DELETE), "spec.approvedVersion", 2)
    with pytest.raises(ApiException) as raised:
        create(api_client, namespace, body)
    assert "only meaningful with approval.policy Manual" in json.loads(raised.value.body)["message"]


@pytest.mark.usefixtures("crds_installed")
def test_the_api_server_applies_the_spec_defaults(api_client: client.ApiClient, namespace: str) -> None:
    from mlops_operator.api.v1alpha1 import DriftMonitor, Model

    model = create(api_client, namespace, MODEL)
    assert model["spec"] == Model.model_validate(model).spec.dump()  # every default, the same values
    assert model["spec"]["serving"]["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}}  # no limits
    assert model["spec"]["retrain"] == {
        "onDatasetChange": True,
        "cooldownSeconds": 600,
        "productionLabels": {"enabled": False, "windowSeconds": 604800, "maxRows": 100000},  # opt-in
    }
    monitor = create(api_client, namespace, with_changes(MONITOR, "spec.schedule", DELETE))
    assert monitor["spec"]["schedule"] == {"intervalSeconds": 300}  # and the schedule rule holds
    assert monitor["spec"] == DriftMonitor.model_validate(monitor).spec.dump()


@pytest.mark.usefixtures("crds_installed")
def test_conditions_are_a_map_keyed_by_type(api_client: client.ApiClient, namespace: str) -> None:
    custom = client.CustomObjectsApi(api_client)
    create(api_client, namespace, MODEL)
    ready = {"type": "Ready", "status": "True", "reason": "Ready", "lastTransitionTime": "2026-12-01T00:00:00Z"}
    with pytest.raises(ApiException) as raised:
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "models", "cancer-lr", {"status": {"conditions": [ready, ready]}}
        )
    assert raised.value.status == 422 and "Duplicate value" in json.loads(raised.value.body)["message"]


@pytest.mark.usefixtures("crds_installed")
def test_kubectl_explain_has_a_description_and_the_default(api_client: client.ApiClient) -> None:
    """`kubectl explain` reads the published OpenAPI v3 document: the CRD's descriptions and defaults."""
    request = api_client.param_serialize("GET", "/openapi/v3/apis/mlops.dev/v1alpha1", auth_settings=["BearerToken"])
    response = api_client.call_api(*request)
    response.read()
    document = json.loads(response.data)
    spec = document["components"]["schemas"]["dev.mlops.v1alpha1.Model"]["properties"]["spec"]
    replicas = spec["properties"]["serving"]["properties"]["replicas"]
    assert replicas["description"].startswith("Server pods") and replicas["default"] == 1


def _eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.2)


def _accepted(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> bool:
    try:
        create(api, namespace, body)
    except ApiException as exc:
        if "metadata.name must be" not in str(exc.body):
            raise
        return False
    return True


@pytest.mark.usefixtures("crds_installed")
def test_names_are_checked_on_create_only(api_client: client.ApiClient, namespace: str) -> None:
    """A Model created before the rule existed (a name too long for it) stays updatable, status too."""
    ext = client.ApiextensionsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)

    def read_crd() -> dict[str, Any]:
        raw = ext.read_custom_resource_definition("models.mlops.dev", _preload_content=False)
        loaded: dict[str, Any] = json.loads(raw.data)
        return loaded

    crd = read_crd()
    rule = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].pop("x-kubernetes-validations")
    old_name = "m" * 50
    probe = copy.deepcopy(MODEL) | {"metadata": {"generateName": "n" * 50}}  # a new name at each try
    try:
        ext.replace_custom_resource_definition("models.mlops.dev", crd)  # as before the rule
        _eventually(
            lambda: _accepted(api_client, namespace, with_changes(MODEL, "metadata.name", old_name)),
            "a long name is accepted without the rule",
        )
    finally:
        crd = read_crd()
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"] = rule
        ext.replace_custom_resource_definition("models.mlops.dev", crd)
    _eventually(
        lambda: not _accepted(api_client, namespace, probe),
        "the restored rule refuses a long name",
    )
    patched = custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "models", old_name, {"spec": {"serving": {"replicas": 2}}}
    )
    assert patched["spec"]["serving"]["replicas"] == 2
    patched = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "models", old_name, {"status": {"phase": "Training"}}
    )
    assert patched["status"]["phase"] == "Training"


@pytest.mark.usefixtures("crds_installed")
def test_nested_hyperparameters_pass_admission_and_fail_parsing(api_client: client.ApiClient, namespace: str) -> None:
    """CEL cannot type a map of scalar unions, so this one is a semantic error: the operator's parse
    (the same pydantic model) turns it into an InvalidSpec condition."""
    from pydantic import ValidationError

    from mlops_operator.api.v1alpha1 import Model

    created = create(api_client, namespace, with_changes(MODEL, "spec.trainer.params", {"C": {"nested": 1}}))
    with pytest.raises(ValidationError, match=r"params\.C"):
        Model.model_validate(created)


@pytest.mark.usefixtures("crds_installed")
def test_status_is_a_subresource(api_client: client.ApiClient, namespace: str) -> None:
    custom = client.CustomObjectsApi(api_client)
    body = with_changes(MODEL, "status", {"phase": "Serving"})
    created = create(api_client, namespace, body)
    assert "status" not in created or created["status"].get("phase") != "Serving"
    patched = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "models", "cancer-lr", {"status": {"phase": "Training", "latestVersion": 1}}
    )
    assert patched["status"]["phase"] == "Training"


# --- what the builders render from admitted specs, on the same API server (dry run) --------------
STEERED_MODEL = with_changes(
    with_changes(
        MODEL,
        "spec.trainer",
        {
            "estimator": "sklearn.neural_network.MLPClassifier",
            "resources": {"requests": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}},
            "nodeSelector": {"nvidia.com/gpu.present": "true"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "nvidia.com/gpu.memory", "operator": "Gt", "values": ["16000"]}]}
            ]}}},
            "imagePullSecrets": [{"name": "registry-creds"}],
            "priorityClassName": "ml-training",
        },
    ),
    "spec.serving",
    {
        "replicas": 3,
        "resources": {"requests": {"memory": "2Gi"}},
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                                "labelSelector": {"matchLabels": {"mlops.dev/model": "cancer-lr"}}}}
        ]}},
        "disruptionBudget": {"minAvailable": "50%"},
    },
)  # fmt: skip


RENDERED_PLURALS = {
    "Job": "jobs",
    "Deployment": "deployments",
    "Service": "services",
    "PodDisruptionBudget": "poddisruptionbudgets",
}


def _dry_run(api: client.ApiClient, obj: dict[str, Any]) -> None:
    """POST with dryRun=All: validated and admitted like a real create, stored nowhere."""
    root = f"/apis/{obj['apiVersion']}" if "/" in obj["apiVersion"] else f"/api/{obj['apiVersion']}"
    path = f"{root}/namespaces/{obj['metadata']['namespace']}/{RENDERED_PLURALS[obj['kind']]}"
    request = api.param_serialize(
        "POST",
        path,
        query_params=[("dryRun", "All"), ("fieldValidation", "Strict")],
        body=obj,
        header_params={"Content-Type": "application/json"},
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*request)
    response.read()
    assert response.status == 201, f"{obj['kind']}: {response.data!r}"


@pytest.mark.usefixtures("crds_installed")
def test_the_workloads_rendered_from_an_admitted_spec_pass_the_api_server(
    api_client: client.ApiClient, namespace: str
) -> None:
    """Issue 14: a spec with only requests.memory 4Gi once became a Job with a 1Gi limit, which the
    API server refused. Here the admitted (defaulted) spec of a GPU trainer and a spread, budgeted
    server is parsed as the operator parses it and rendered; the API server takes all of it."""
    from mlops_operator.api.v1alpha1 import Model
    from mlops_operator.api.v1alpha1.model import ModelVersion, VersionState
    from mlops_operator.builders import jobs, serving
    from mlops_operator.settings import Settings

    model = Model.model_validate(create(api_client, namespace, STEERED_MODEL))
    assert model.spec.trainer.resources.limits is None  # no schema default stands in the way
    settings = Settings()
    plan = jobs.training_plan(
        model, version=1, target="target", dataset_version="d" * 64, data_uri="file:///var/lib/mlops/d.parquet",
        champion=None, trigger="initial", settings=settings,
    )  # fmt: skip
    job = jobs.training_job(model, plan, jobs.training_request(jobs.training_spec_hash(model), "d", None), settings)
    limits = job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}
    served = ModelVersion(version=1, state=VersionState.APPROVED, artifact_uri="file:///m.skops", sha256="a" * 64)
    budget = serving.disruption_budget(model)
    assert budget is not None
    for obj in (job, serving.deployment(model, served, settings), serving.service(model), budget):
        _dry_run(api_client, obj)
    token = {"tokenSecretRef": {"name": "inference-token", "key": "token"}}
    guarded_spec = with_changes(with_changes(MODEL, "spec.serving.auth", token), "metadata.name", "guarded")
    guarded = Model.model_validate(create(api_client, namespace, guarded_spec))
    _dry_run(api_client, serving.deployment(guarded, served, settings))  # the Secret volume and its mount


@pytest.mark.usefixtures("crds_installed")
def test_the_tenant_quota_samples_pass_the_api_server(apiserver_instance: Any, namespace: str) -> None:
    """manifests/samples/tenant/ as documented: `kubectl apply -n <ns> -f manifests/samples/tenant/`
    (server-side dry run: validated and admitted like a real apply, stored nowhere)."""
    import shutil
    import subprocess
    from pathlib import Path

    kubectl = next(
        (
            str(c)
            for c in (Path("/var/cache/mlops-operator/bin/kubectl"), shutil.which("kubectl"))
            if c and Path(c).exists()
        ),
        None,
    )
    if kubectl is None:
        pytest.skip("kubectl is not built yet: run `make binaries`")
    tenant = Path(__file__).resolve().parents[2] / "manifests" / "samples" / "tenant"
    done = subprocess.run(
        [kubectl, "--kubeconfig", str(apiserver_instance.kubeconfig), "apply", "--dry-run=server",
         "--validate=strict", "-n", namespace, "-f", str(tenant)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "resourcequota/mlops-tenant created (server dry run)" in done.stdout
    assert "limitrange/mlops-tenant created (server dry run)" in done.stdout
