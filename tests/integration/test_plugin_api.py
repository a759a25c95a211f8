"""kubectl-mlops against a real kube-apiserver: its merge patches pass the CRDs' schema and CEL rules.

No operator runs here: the status a reconciler would write is put in place through the status
subresource, then the plugin reads and patches the objects exactly as it does on a cluster.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from mlops_operator import contracts, plugin
from mlops_operator.plugin import resources
from tests.integration import apiserver

SAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "samples"
NOW = datetime.now(UTC).replace(microsecond=0)


def stamp(minutes_ago: float) -> str:
    return resources.rfc3339(NOW - timedelta(minutes=minutes_ago))


def version(n: int, state: str, served_minutes_ago: float | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"version": n, "state": state, "metrics": {"accuracy": 0.9 + n / 100}}
    if served_minutes_ago is not None:
        record["servingAt"] = stamp(served_minutes_ago)
    return record


MODEL_STATUS = {
    "phase": "Serving",
    "latestVersion": 3,
    "servingVersion": 2,
    "metric": "accuracy=0.92",
    "versions": [version(1, "Retired", 50), version(2, "Serving", 20), version(3, "Validated")],
    "conditions": [
        {
            "type": "Ready",
            "status": "False",
            "reason": "AwaitingApproval",
            "message": "version 3 is validated and waits for approval",
            "lastTransitionTime": stamp(3),
        }
    ],
}


class Env:
    def __init__(self, api: client.ApiClient, kubeconfig: Path, namespace: str) -> None:
        self.objects = client.CustomObjectsApi(api)
        self.kubeconfig = kubeconfig
        self.namespace = namespace

    def create(self, sample: str, name: str | None = None, status: dict[str, Any] | None = None, **spec: Any) -> str:
        body = yaml.safe_load((SAMPLES / sample).read_text())
        if name:
            body["metadata"]["name"] = name
        body["spec"].update(spec)
        plural = resources.resolve_kind(body["kind"]).crd.plural
        self.objects.create_namespaced_custom_object(contracts.GROUP, contracts.VERSION, self.namespace, plural, body)
        if status is not None:
            self.objects.patch_namespaced_custom_object_status(
                contracts.GROUP, contracts.VERSION, self.namespace, plural, body["metadata"]["name"], {"status": status}
            )
        return str(body["metadata"]["name"])

    def get(self, plural: str, name: str) -> dict[str, Any]:
        obj = self.objects.get_namespaced_custom_object(
            contracts.GROUP, contracts.VERSION, self.namespace, plural, name
        )
        assert isinstance(obj, dict)
        return obj

    def mlops(self, *args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = plugin.main([*args, "--kubeconfig", str(self.kubeconfig), "-n", self.namespace], out=out, err=err)
        return code, out.getvalue(), err.getvalue()


@pytest.fixture
def env(
    api_client: client.ApiClient, apiserver_instance: apiserver.ApiServer, crds_installed: list[str], namespace: str
) -> Env:
    return Env(api_client, apiserver_instance.kubeconfig, namespace)


def test_approve_sets_the_approved_version_of_a_manual_model(env: Env) -> None:
    name = env.create("model-manual.yaml", status=MODEL_STATUS)
    code, out, err = env.mlops("approve", name, "3")
    assert code == 0, err
    assert "version 3 approved" in out
    assert env.get("models", name)["spec"]["approvedVersion"] == 3


def test_approve_refuses_an_automatic_model_and_patches_nothing(env: Env) -> None:
    name = env.create("model-automatic.yaml", status=MODEL_STATUS)
    before = env.get("models", name)
    code, _, err = env.mlops("approve", name, "3")
    assert code == 1 and "approval policy Automatic" in err
    assert env.get("models", name)["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_rollback_of_an_automatic_model_passes_the_cel_rules(env: Env) -> None:
    name = env.create("model-automatic.yaml", status=MODEL_STATUS)
    code, out, err = env.mlops("rollback", name)
    assert code == 0, err
    assert "now Manual" in out
    spec = env.get("models", name)["spec"]
    assert (spec["approval"]["policy"], spec["approvedVersion"]) == ("Manual", 1)


def test_the_cel_rule_the_plugin_works_around_is_real(env: Env) -> None:
    """approvedVersion on an explicitly Automatic model is refused at admission: hence rollback's switch."""
    with pytest.raises(client.ApiException) as refused:
        env.create("model-automatic.yaml", name="pinned-automatic", approvedVersion=1)
    assert refused.value.status == 422
    assert "approvedVersion is only meaningful with approval.policy Manual" in (refused.value.body or "")


def test_reject_and_retrain_write_the_annotations_the_operator_reads(env: Env) -> None:
    name = env.create("model-manual.yaml", status=MODEL_STATUS)
    assert env.mlops("reject", name, "3", "--reason", "leaks\nthe label")[0] == 0
    assert env.mlops("reject", name, "1", "--reason", "too old")[0] == 0
    assert env.mlops("retrain", name, "--reason", "fresh data")[0] == 0
    annotations = env.get("models", name)["metadata"]["annotations"]
    assert json.loads(annotations[contracts.ANNOTATION_REJECTED_VERSIONS]) == {"1": "too old", "3": "leaks the label"}
    moment, reason = annotations[contracts.ANNOTATION_RETRAIN_REQUESTED].split(";", 1)
    assert reason == "fresh data"
    assert abs(datetime.fromisoformat(moment.replace("Z", "+00:00")) - datetime.now(UTC)) < timedelta(minutes=5)
    code, _, err = env.mlops("approve", name, "3")
    assert code == 1 and "was rejected" in err


def test_status_history_why_and_drift_read_real_objects(env: Env) -> None:
    model = env.create("model-manual.yaml", status=MODEL_STATUS)
    env.create("dataset.yaml", status={"phase": "Ready", "version": "ab" * 32, "rows": 569, "columns": 31})
    monitor = env.create(
        "driftmonitor.yaml",
        status={
            "lastVerdict": "Drift",
            "driftedShare": 0.6,
            "lastCheck": stamp(1),
            "reportUri": "file:///var/lib/mlops/ns/drift/m/1/report.html",
            "featureScores": [
                {"name": "mean radius", "test": "ks", "score": 0.001, "threshold": 0.05, "drifted": True},
                {"name": "mean texture", "test": "ks", "score": 0.4, "threshold": 0.05, "drifted": False},
            ],
        },
    )
    code, out, err = env.mlops("status", "-o", "json")
    assert code == 0, err
    everything = json.loads(out)
    assert [d["rows"] for d in everything["datasets"]] == [569]
    assert [(m["name"], m["serving"]) for m in everything["models"]] == [(model, 2)]
    assert [m["verdict"] for m in everything["driftmonitors"]] == ["Drift"]
    code, out, _ = env.mlops("history", model)
    assert code == 0 and out.splitlines()[1].split()[:2] == ["VERSION", "STATE"]
    code, out, _ = env.mlops("why", "mdl", model)
    assert code == 0 and f"kubectl mlops approve {model} <version>" in out
    code, out, _ = env.mlops("drift", monitor, "-o", "yaml")
    report = yaml.safe_load(out)
    assert report["report"].endswith("report.html")
    assert [f["feature"] for f in report["features"]] == ["mean radius", "mean texture"]


def test_a_missing_resource_is_a_message_not_a_traceback(env: Env) -> None:
    code, out, err = env.mlops("history", "nope")
    assert (code, out) == (1, "")
    assert err.startswith("error: Model nope not found in namespace")


def test_status_all_namespaces_lists_through_the_cluster_wide_path(env: Env) -> None:
    name = env.create("model-manual.yaml", status=MODEL_STATUS)
    code, out, err = env.mlops("status", "models", "-A", "-o", "json")
    assert code == 0, err
    assert (env.namespace, name) in [(m["namespace"], m["name"]) for m in json.loads(out)]


def test_one_unparseable_object_does_not_fail_a_cluster_wide_listing(env: Env) -> None:
    valid = env.create("model-manual.yaml", status=MODEL_STATUS)
    body = yaml.safe_load((SAMPLES / "model-manual.yaml").read_text())
    body["metadata"]["name"] = "nested-params"
    body["spec"]["trainer"]["params"] = {"C": {"nested": 1}}  # passes admission, fails the operator's parse
    env.objects.create_namespaced_custom_object(contracts.GROUP, contracts.VERSION, env.namespace, "models", body)
    code, out, err = env.mlops("status", "models", "-A", "-o", "json")
    assert code == 0, err
    assert (env.namespace, valid) in [(m["namespace"], m["name"]) for m in json.loads(out)]
    assert "nested-params" in err  # said, not hidden
