"""The Helm chart lints, renders, refuses wrong values, and equals the kustomize base."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "mlops-operator"


def _load_sync_base() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sync_base", REPO / "manifests" / "sync-base.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sync_base = _load_sync_base()
KUBE = ("--kube-version", sync_base.KUBE_VERSION)  # Chart.yaml's kubeVersion, whatever helm assumes


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@cache
def render(helm: str, *extra: str) -> tuple[dict[str, Any], ...]:
    done = run(helm, "template", "mlops-operator", str(CHART), "-n", "mlops-system", *KUBE, *extra)
    assert done.returncode == 0, done.stderr
    return tuple(o for o in yaml.safe_load_all(done.stdout) if o)


def assert_template_matches_golden(helm: str, template: str, golden: Path, *extra: str) -> None:
    """One template of the chart rendered alone, the chart's version masked, equals the golden file
    (UPDATE_GOLDEN=1 rewrites it, for review)."""
    done = run(helm, "template", "mlops-operator", str(CHART), "-n", "mlops-system", *KUBE, *extra, "-s", template)
    assert done.returncode == 0, done.stderr
    text = done.stdout.replace("mlops-operator-0.1.0", "mlops-operator-VERSION")
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), "run with UPDATE_GOLDEN=1 and review the diff"


def by_kind(objects: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def walk(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        yield from walk(child)


# --- lint and render ---------------------------------------------------------------------------------


def test_helm_lint_is_clean(helm: str) -> None:
    done = run(helm, "lint", "--strict", str(CHART), "-n", "mlops-system", *KUBE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_default_render_is_the_operator_its_accounts_rbac_and_claim(helm: str) -> None:
    objects = render(helm)
    assert sorted(key(o) for o in objects) == sorted(
        [
            ("ServiceAccount", "mlops-system", "mlops-operator"),
            ("ServiceAccount", "mlops-system", "mlops-workload"),
            ("ServiceAccount", "mlops-system", "mlops-serving"),
            ("ClusterRole", "", "mlops-operator"),
            ("ClusterRoleBinding", "", "mlops-operator"),
            ("Service", "mlops-system", "mlops-operator-webhook"),
            ("MutatingWebhookConfiguration", "", "mlops-operator-approvals"),
            ("PersistentVolumeClaim", "mlops-system", "mlops-artifacts"),
            ("Deployment", "mlops-system", "mlops-operator"),
            ("ValidatingAdmissionPolicy", "", "mlops-operator-workloads"),
            ("ValidatingAdmissionPolicyBinding", "", "mlops-operator-workloads"),
            ("ValidatingAdmissionPolicy", "", "mlops-operator-accounts"),
            ("ValidatingAdmissionPolicyBinding", "", "mlops-operator-accounts"),
        ]
    )
    accounts = {o["metadata"]["name"]: o for o in by_kind(objects, "ServiceAccount")}
    assert accounts["mlops-workload"]["automountServiceAccountToken"] is False
    assert accounts["mlops-serving"]["automountServiceAccountToken"] is False
    claim = by_kind(objects, "PersistentVolumeClaim")[0]
    assert claim["metadata"]["annotations"] == {
        "helm.sh/resource-policy": "keep",  # helm uninstall keeps it
        "argocd.argoproj.io/sync-options": "Prune=false,Delete=false",  # so do Argo CD's prune and app deletion
    }


def test_a_claim_not_kept_carries_no_keep_annotations(helm: str) -> None:
    (claim,) = by_kind(render(helm, "--set", "store.pvc.keepOnUninstall=false"), "PersistentVolumeClaim")
    assert "annotations" not in claim["metadata"]


def test_operator_pod_is_restricted_and_probed(helm: str) -> None:
    (deployment,) = by_kind(render(helm), "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"] == "localhost/mlops-operator:0.1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["args"] == ["run"]
    sc = container["securityContext"]
    assert sc == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {"name": "health", "containerPort": 8081, "protocol": "TCP"} in container["ports"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert container["resources"]["limits"]["memory"] == "512Mi"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLOPS_IMAGE"] == container["image"]
    assert env["MLOPS_STORE_URI"] == "file:///var/lib/mlops"
    assert env["MLOPS_STORE_CLAIM"] == "mlops-artifacts"
    assert env["MLOPS_NAMESPACES"] == ""
    assert env["MLOPS_WORKLOAD_SERVICE_ACCOUNT"] == "mlops-workload"
    assert env["MLOPS_SERVING_SERVICE_ACCOUNT"] == "mlops-serving"


def test_image_values_reach_the_operator_and_its_workloads(helm: str) -> None:
    (deployment,) = by_kind(render(helm, "--set", "image.tag=abc123", "--set", "image.pullPolicy=Never"), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert container["image"] == env["MLOPS_IMAGE"] == "localhost/mlops-operator:abc123"
    assert container["imagePullPolicy"] == env["MLOPS_IMAGE_PULL_POLICY"] == "Never"


def test_a_tag_of_digits_needs_set_string_and_a_number_is_refused_by_name(helm: str) -> None:
    """A short git hash can be all digits (4187364): `--set` makes it a number, which the schema
    refuses naming the field (the tests and hack/demo.sh pass tags with --set-string, as the docs say)."""
    (deployment,) = by_kind(render(helm, "--set-string", "image.tag=4187364"), "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "localhost/mlops-operator:4187364"
    numeric = ("--set", "image.tag=4187364")
    done = run(helm, "template", "mlops-operator", str(CHART), "-n", "mlops-system", *KUBE, *numeric)
    assert done.returncode != 0 and "/image/tag" in done.stderr and "want string" in done.stderr, done.stderr


def test_azure_store_wires_workload_identity_for_the_workloads_only(helm: str) -> None:
    client_id = "11111111-2222-3333-4444-555555555555"
    objects = render(
        helm,
        *("--set", "store.type=azure", "--set", "store.azure.storageAccount=mlopsdata"),
        *("--set", "store.azure.container=artifacts", "--set", "store.azure.prefix=prod"),
        *("--set", f"store.azure.clientId={client_id}"),
    )
    assert not by_kind(objects, "PersistentVolumeClaim")
    accounts = {a["metadata"]["name"]: a for a in by_kind(objects, "ServiceAccount")}
    for name in ("mlops-workload", "mlops-serving"):
        assert accounts[name]["metadata"]["annotations"]["azure.workload.identity/client-id"] == client_id
    # The operator never reads the store: no token for it, neither the account's client id nor the pod's label.
    assert "annotations" not in accounts["mlops-operator"]["metadata"]
    (deployment,) = by_kind(objects, "Deployment")
    assert "azure.workload.identity/use" not in deployment["spec"]["template"]["metadata"]["labels"]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MLOPS_STORE_URI"] == "az://artifacts/prod" and env["MLOPS_STORE_CLAIM"] == ""
    assert env["AZURE_STORAGE_ACCOUNT_NAME"] == "mlopsdata"
    assert env["MLOPS_AZURE_CLIENT_ID"] == client_id  # handed on to the workload accounts and pods


def test_the_operators_own_account_keeps_the_annotations_given_to_it(helm: str) -> None:
    objects = render(
        helm,
        *("--set", "store.type=azure", "--set", "store.azure.storageAccount=mlopsdata"),
        *("--set", "store.azure.container=artifacts"),
        *("--set", "store.azure.clientId=11111111-2222-3333-4444-555555555555"),
        *("--set", "serviceAccount.annotations.team=ml"),
    )
    (operator,) = [a for a in by_kind(objects, "ServiceAccount") if a["metadata"]["name"] == "mlops-operator"]
    assert operator["metadata"]["annotations"] == {"team": "ml"}


def test_s3_store_credentials_reach_the_workloads_only_and_by_reference(helm: str) -> None:
    objects = render(
        helm,
        *("--set", "store.type=s3", "--set", "store.s3.bucket=models", "--set", "store.s3.secretRef.name=s3"),
        *("--set", "store.s3.endpoint=http://minio.minio:9000", "--set", "store.s3.region=eu-west-1"),
    )
    (deployment,) = by_kind(objects, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "envFrom" not in container  # the operator never reads the store, nor its Secret
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLOPS_STORE_URI"] == "s3://models" and env["MLOPS_STORE_SECRET"] == "s3"  # a name, handed on
    assert env["AWS_ENDPOINT_URL"] == "http://minio.minio:9000"
    assert env["AWS_DEFAULT_REGION"] == env["AWS_REGION"] == "eu-west-1"
    (plain,) = by_kind(render(helm, "--set", "store.type=s3", "--set", "store.s3.bucket=models"), "Deployment")
    names = {e["name"] for e in plain["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert not {"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "MLOPS_STORE_SECRET"} & names


def test_azure_store_key_secret_reaches_the_workloads_only_and_by_reference(helm: str) -> None:
    azure = (
        *("--set", "store.type=azure", "--set", "store.azure.storageAccount=mlopsdata"),
        *("--set", "store.azure.container=artifacts"),
    )
    (deployment,) = by_kind(render(helm, *azure, "--set", "store.azure.secretRef.name=blob-key"), "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "envFrom" not in container
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLOPS_STORE_SECRET"] == "blob-key" and env["AZURE_STORAGE_ACCOUNT_NAME"] == "mlopsdata"
    (plain,) = by_kind(render(helm, *azure), "Deployment")
    assert "MLOPS_STORE_SECRET" not in {e["name"] for e in plain["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_monitoring_objects_only_when_enabled(helm: str) -> None:
    assert not [o for o in render(helm) if o["apiVersion"].startswith("monitoring.coreos.com")]
    objects = render(
        helm,
        "--set",
        "monitoring.serviceMonitor.enabled=true",
        "--set",
        "monitoring.prometheusRule.enabled=true",
    )
    (monitor,) = by_kind(objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    (service,) = [s for s in by_kind(objects, "Service") if s["metadata"]["name"] != "mlops-operator-webhook"]
    assert service["spec"]["ports"][0]["port"] == 9090
    (rule,) = by_kind(objects, "PrometheusRule")
    alerts = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    assert set(alerts) == {
        "MlopsDriftDetected",
        "MlopsTrainingFailed",
        "MlopsRolloutFailed",
        "MlopsApprovalPending",
        "MlopsServingErrorRate",
        "MlopsServingLatencyHigh",
    }  # each one's behaviour: tests/contract/prometheus/rules_test.yaml
    assert "{{ $labels.model }}" in alerts["MlopsDriftDetected"]["annotations"]["summary"]


# --- wrong values fail at install ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "complaint"),
    [
        (
            ("--set", "operator.watchNamespaces=team-a"),
            "/operator/watchNamespaces: got string, want array",
        ),  # a string, not a list
        (
            ("--set-string", "monitoring.metricsPort=9090"),
            "/monitoring/metricsPort: got string, want integer",
        ),  # a string, not an integer
        (("--set", "store.type=nfs"), "/store/type: value must be one of"),  # not in the enum
        (("--set", "image.pullPolicy=Sometimes"), "/image/pullPolicy: value must be one of"),
        (
            ("--set", "operator.replicas=2"),
            "additional properties replicas not allowed",
        ),  # unknown key: additionalProperties false
        (("--set", "store.pvc.size=ten"), "/store/pvc/size: ten does not match pattern"),
        (("--set", "serviceAccount.create=yes please"), "/serviceAccount/create: got string, want boolean"),
    ],
)
def test_schema_rejects_a_wrong_value(helm: str, flags: tuple[str, ...], complaint: str) -> None:
    done = run(helm, "template", "mlops-operator", str(CHART), "-n", "mlops-system", *KUBE, *flags)
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr
    # helm reports "- at '/path': problem"; normalise to "/path: problem"
    assert complaint in done.stderr.replace("'", "").replace("- at ", ""), done.stderr


def test_cross_field_rules_fail_with_a_clear_message(helm: str) -> None:
    azure_without_account = ("--set", "store.type=azure", "--set", "store.azure.container=artifacts")
    done = run(helm, "template", "x", str(CHART), *KUBE, *azure_without_account)
    assert done.returncode != 0
    assert "store.type=azure needs store.azure.storageAccount and store.azure.container" in done.stderr


# --- manifests/ --------------------------------------------------------------------------------------------


def kustomize(kubectl: str, path: Path) -> list[dict[str, Any]]:
    done = run(kubectl, "kustomize", str(path))
    assert done.returncode == 0, done.stderr
    return [o for o in yaml.safe_load_all(done.stdout) if o]


def test_kustomize_base_equals_the_chart_for_default_values(helm: str, kubectl: str) -> None:
    chart = [sync_base.strip_helm_labels(o) for o in render(helm, "--include-crds")]
    base = [o for o in kustomize(kubectl, REPO / "manifests" / "base") if o["kind"] != "Namespace"]
    chart_by_key = {key(o): o for o in chart}
    base_by_key = {key(o): o for o in base}
    assert sorted(base_by_key) == sorted(chart_by_key), "run: .venv/bin/python manifests/sync-base.py"
    for k, obj in chart_by_key.items():
        assert base_by_key[k] == obj, f"{k} differs: run .venv/bin/python manifests/sync-base.py"


def test_base_namespace_enforces_restricted(kubectl: str) -> None:
    (namespace,) = [o for o in kustomize(kubectl, REPO / "manifests" / "base") if o["kind"] == "Namespace"]
    assert namespace["metadata"]["name"] == "mlops-system"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_no_wildcards_anywhere_in_the_rendered_manifests(helm: str) -> None:
    for obj in render(helm, "--set", "monitoring.serviceMonitor.enabled=true"):
        for node in walk(obj):
            assert node != "*", f"wildcard in {key(obj)}"


# The one variable the chart passes for people rather than for settings.py (`kubectl describe` shows it).
NOT_SETTINGS = {"MLOPS_OPERATOR_NAMESPACE"}


class RecordingEnv(dict[str, str]):
    """An environment that remembers which names were asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, name: str, default: Any = None) -> Any:
        self.asked.add(name)
        return super().get(name, default)


def test_every_setting_the_chart_passes_is_one_the_operator_reads(helm: str) -> None:
    from mlops_operator.settings import Settings

    env = RecordingEnv()
    Settings.from_env(env)
    passed: set[str] = set()
    for flags in [
        (),
        ("--set", "store.type=s3", "--set", "store.s3.bucket=models", "--set", "store.s3.secretRef.name=s3"),
        ("-f", str(REPO / "tests" / "contract" / "fixtures" / "values-workloads.yaml")),
    ]:
        (deployment,) = by_kind(render(helm, *flags), "Deployment")
        passed |= {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    mlops = {name for name in passed if name.startswith("MLOPS_")}
    assert mlops - NOT_SETTINGS <= env.asked, f"the operator ignores {sorted(mlops - NOT_SETTINGS - env.asked)}"


def test_the_chart_refuses_a_cluster_older_than_its_kube_version(helm: str) -> None:
    done = run(helm, "template", "x", str(CHART), "--kube-version", "1.31.9")
    assert done.returncode != 0 and "requires kubeVersion: >=1.32.0-0" in done.stderr
    assert run(helm, "template", "x", str(CHART), "--kube-version", "1.34.4").returncode == 0
