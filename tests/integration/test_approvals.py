"""Issue 15 item 1 against a real kube-apiserver: the operator's approvals webhook records who approved
from the API server's authentication (static tokens for alice, bob and carol), four-eyes holds, the
trigger cannot approve under separation of duties, forged records are overwritten, and while the
webhook is down approvals are refused and other edits pass."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from mlops_operator import contracts
from mlops_operator.api.v1alpha1 import Model
from mlops_operator.kube import ApiError
from mlops_operator.kube.webhooks import MUTATING_WEBHOOK_CONFIGURATION
from mlops_operator.plugin import actions
from tests.integration import apiserver
from tests.integration.reconcile_harness import Cluster, eventually, operator, resource, train_result
from tests.integration.test_reconcile_model import model_spec, ready_dataset, training_job

pytestmark = pytest.mark.integration
NAME = "four-eyes"
FOUR_EYES = {
    "approval": {
        "policy": "Manual",
        "requiredApprovers": 2,
        "approverGroup": "ml-approvers",
        "separationOfDuties": True,
    }
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    """A self-signed serving certificate for 127.0.0.1, as a mounted Secret would hold it (no ca.crt:
    the certificate is its own CA, the configuration's caBundle)."""
    out = tmp_path / "certs"
    out.mkdir()
    key, cert = str(out / "tls.key"), str(out / "tls.crt")
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert),
        ],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture
def people(api_client: Any, namespace: str, apiserver_instance: apiserver.ApiServer) -> dict[str, Cluster]:
    """alice, bob and carol may create, read and edit Models in the test namespace, nothing else."""
    rbac = client.RbacAuthorizationV1Api(api_client)
    rule = {"apiGroups": [contracts.GROUP], "resources": ["models"], "verbs": ["get", "list", "create", "patch"]}
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "model-editors"}, "rules": [rule]})
    subjects = [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"} for user in apiserver.USERS]
    binding = {"metadata": {"name": "model-editors"}, "subjects": subjects}
    binding["roleRef"] = {"kind": "Role", "name": "model-editors", "apiGroup": "rbac.authorization.k8s.io"}
    rbac.create_namespaced_role_binding(namespace, binding)
    return {
        user: Cluster(
            config.new_client_from_config(str(apiserver.user_kubeconfig(apiserver_instance, user))), namespace
        )
        for user in apiserver.USERS
    }


@pytest.fixture
def webhook(
    namespace: str, api_client: Any, apiserver_instance: apiserver.ApiServer, monkeypatch: Any
) -> Iterator[dict[str, Any]]:
    """The operator's settings for its webhook (a certificate it makes itself); the configuration is
    deleted after the test (it fails closed: left behind, it would refuse approvals in this namespace)."""
    monkeypatch.setenv("KUBECONFIG", str(apiserver_instance.kubeconfig))
    port = _free_port()
    name = f"mlops-approvals-{namespace}"
    yield {
        "admission_port": port,
        "admission_configuration": name,
        "admission_url": f"https://127.0.0.1:{port}",
    }
    Cluster(api_client, namespace).kube.request_sync("DELETE", MUTATING_WEBHOOK_CONFIGURATION.path(None, name))


def version_record(c: Cluster, version: int) -> dict[str, Any]:
    """The version's record; KeyError (which `eventually` retries) until the status holds it: its
    training Job is created before the status patch that records it."""
    found = [v for v in c.status("Model", NAME).get("versions") or [] if v["version"] == version]
    if not found:
        raise KeyError(f"version {version} not in status yet")
    return found[0]


def approved_message(c: Cluster) -> str:
    found = c.condition("Model", NAME, "Approved")
    return str(found["message"]) if found else ""


def approve(person: Cluster, version: int) -> None:
    """What `kubectl mlops approve` sends, with that person's own credentials."""
    person.patch("Model", NAME, actions.approve_patch(version))


def test_approvers_come_from_the_api_server_and_four_eyes_holds(
    api_client: Any,
    apiserver_instance: apiserver.ApiServer,
    namespace: str,
    current_crds: None,
    webhook: dict[str, Any],
    people: dict[str, Cluster],
    certs: Path,
    tmp_path: Path,
) -> None:
    admin, alice, bob, carol = Cluster(api_client, namespace), people["alice"], people["bob"], people["carol"]
    store = (tmp_path / "store").as_uri()
    mounted = {**webhook, "admission_cert_dir": str(certs)}  # as from a Secret; the other test: its own
    with operator(apiserver_instance.kubeconfig, namespace, store_uri=store, **mounted):
        eventually(lambda: configured(admin, webhook["admission_configuration"]), what="the webhook configured")
        ready_dataset(admin)
        carol.create(resource(Model, NAME, model_spec(**FOUR_EYES)))  # carol triggered v1's training
        admin.finish_job(training_job(admin, NAME, 1), message=train_result(1, 0.93))
        eventually(lambda: version_record(admin, 1)["state"] == "Validated", what="v1 validated")
        assert version_record(admin, 1)["triggeredBy"] == "carol"

        approve(carol, 1)
        eventually(lambda: "carol's approval does not count" in approved_message(admin), what="carol refused")
        assert "carol triggered its training (separationOfDuties)" in approved_message(admin)

        approve(alice, 1)
        time.sleep(1.1)  # records are stamped in whole seconds: the second one is a second record
        approve(alice, 1)  # the same person twice counts once
        eventually(lambda: "1 of 2 approvals (alice)" in approved_message(admin), what="alice counted")
        eventually(lambda: len(version_record(admin, 1).get("approvals") or []) == 3, what="3 records")
        assert "needs one more from group ml-approvers" in approved_message(admin)
        assert admin.deployment(f"{NAME}-server") is None and admin.status("Model", NAME).get("servingVersion") is None
        recorded = [m for r, m in admin.events(NAME) if r == "ApprovalRecorded"]
        assert any(m.startswith("version 1 approved by alice (groups: ml-approvers") for m in recorded), recorded

        # a client cannot write the records: its value is replaced by the webhook's
        before = admin.get("Model", NAME)["metadata"]["annotations"][contracts.ANNOTATION_APPROVALS]
        forged = json.dumps([{"version": 1, "action": "Approve", "user": "bob", "at": "2026-01-01T00:00:00Z"}])
        alice.patch("Model", NAME, {"metadata": {"annotations": {contracts.ANNOTATION_APPROVALS: forged}}})
        assert admin.get("Model", NAME)["metadata"]["annotations"][contracts.ANNOTATION_APPROVALS] == before

        approve(bob, 1)  # the second person: v1 serves
        eventually(lambda: admin.served_version(f"{NAME}-server") == "1", what="v1's Deployment")
        admin.roll_out(f"{NAME}-server")
        eventually(lambda: admin.status("Model", NAME).get("servingVersion") == 1, what="v1 serving")
        record = version_record(admin, 1)
        assert record["approvedBy"] == "alice, bob"
        assert [(a["user"], a["counted"]) for a in record["approvals"]] == [
            ("carol", False),
            ("alice", True),
            ("alice", True),
            ("bob", True),
        ]
        assert record["servingPeriods"][-1]["by"] == "bob"
        assert ("Approved", "version 1 approved by alice, bob") in admin.events(NAME)
        stored = eventually(lambda: mirrored_approvers(store, namespace), what="the approvals in registry.json")
        assert stored == ["carol", "alice", "alice", "bob"]

    # the operator (and its webhook) is down: an approval is refused, an edit that approves nothing passes
    with pytest.raises(ApiError) as refused:
        approve(alice, 1)
    assert refused.value.status >= 500 and "approvals.models.mlops.dev" in str(refused.value)
    carol.patch("Model", NAME, {"metadata": {"labels": {"team": "risk"}}})
    assert admin.get("Model", NAME)["metadata"]["labels"]["team"] == "risk"


def test_while_the_webhook_is_down_only_approval_relevant_edits_are_refused(
    api_client: Any,
    apiserver_instance: apiserver.ApiServer,
    namespace: str,
    current_crds: None,
    webhook: dict[str, Any],
    people: dict[str, Cluster],
) -> None:
    admin, alice = Cluster(api_client, namespace), people["alice"]
    spec = model_spec(approval={"policy": "Manual", "requiredApprovers": 2})
    with operator(apiserver_instance.kubeconfig, namespace, **webhook):
        eventually(lambda: configured(admin, webhook["admission_configuration"]), what="the webhook configured")
        alice.create(resource(Model, NAME, spec))
    # the operator stopped; its configuration stays (failurePolicy Fail)
    alice.patch("Model", NAME, {"spec": {"serving": {"replicas": 2}}})  # not approval-relevant: passes
    assert admin.get("Model", NAME)["spec"]["serving"]["replicas"] == 2
    for patch in (
        actions.approve_patch(1),
        {"spec": {"approvedVersion": 1}},
        {"metadata": {"annotations": {contracts.ANNOTATION_REJECTED_VERSIONS: '{"1": "no"}'}}},
        {"metadata": {"annotations": {contracts.ANNOTATION_APPROVALS: "[]"}}},
    ):
        with pytest.raises(ApiError) as refused:
            alice.patch("Model", NAME, patch)
        assert "approvals.models.mlops.dev" in str(refused.value), patch
    assert "approvedVersion" not in admin.get("Model", NAME)["spec"]


def configured(c: Cluster, name: str) -> bool:
    found = c.kube.request_sync("GET", MUTATING_WEBHOOK_CONFIGURATION.path(None, name))
    return bool(found.get("webhooks") and found["webhooks"][0]["clientConfig"].get("caBundle"))


def mirrored_approvers(store: str, namespace: str) -> list[str] | None:
    path = Path(contracts.model_registry_uri(store, namespace, NAME).removeprefix("file://"))
    if not path.exists():
        return None
    ledger = json.loads(path.read_text())
    versions = ledger.get("versions") if isinstance(ledger, dict) else ledger
    record = next((v for v in versions or [] if v.get("version") == 1), None)
    users = [a["user"] for a in (record or {}).get("approvals") or []]
    return users if len(users) == 4 else None
