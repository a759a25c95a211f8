"""The chart's approvals webhook: on by default, least privilege, off on request, a mounted certificate."""

from __future__ import annotations

from typing import Any

from tests.contract.test_chart import by_kind, render


def operator_container(objects: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    [deployment] = by_kind(objects, "Deployment")
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_on_by_default_behind_a_service_with_a_configuration_the_operator_fills(helm: str) -> None:
    objects = render(helm)
    [configuration] = by_kind(objects, "MutatingWebhookConfiguration")
    assert configuration["metadata"]["name"] == "mlops-operator-approvals"
    assert "webhooks" not in configuration  # the operator's; an upgrade leaves them alone
    service = next(s for s in by_kind(objects, "Service") if s["metadata"]["name"] == "mlops-operator-webhook")
    assert service["spec"]["ports"] == [{"name": "webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP"}]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "operator"
    container = operator_container(objects)
    assert {"name": "webhook", "containerPort": 9443, "protocol": "TCP"} in container["ports"]
    values = env(container)
    assert values["MLOPS_ADMISSION_PORT"] == "9443"
    assert values["MLOPS_ADMISSION_CONFIGURATION"] == "mlops-operator-approvals"
    assert values["MLOPS_ADMISSION_SERVICE"] == "mlops-system/mlops-operator-webhook"
    assert values["MLOPS_ADMISSION_TIMEOUT_SECONDS"] == "5"
    assert "MLOPS_ADMISSION_CERT_DIR" not in values  # it makes its own


def test_the_operator_may_only_get_and_patch_its_own_configuration(helm: str) -> None:
    objects = render(helm)
    wanted = {
        "apiGroups": ["admissionregistration.k8s.io"],
        "resources": ["mutatingwebhookconfigurations"],
        "resourceNames": ["mlops-operator-approvals"],
        "verbs": ["get", "patch"],
    }
    grants = [
        rule
        for kind in ("ClusterRole", "Role")
        for r in by_kind(objects, kind)
        for rule in r["rules"]
        if "admissionregistration.k8s.io" in rule["apiGroups"]
    ]
    assert grants == [wanted]  # nowhere else, and never create or delete


def test_disabled_or_with_a_mounted_certificate(helm: str) -> None:
    off = render(helm, "--set", "admissionWebhook.enabled=false")
    assert not by_kind(off, "MutatingWebhookConfiguration")
    assert not [
        r for c in by_kind(off, "ClusterRole") for r in c["rules"] if "admissionregistration.k8s.io" in r["apiGroups"]
    ]
    assert not any(e["name"].startswith("MLOPS_ADMISSION_") for e in operator_container(off)["env"])
    mounted = render(helm, "--set", "admissionWebhook.certSecret=approvals-tls")
    container = operator_container(mounted)
    assert env(container)["MLOPS_ADMISSION_CERT_DIR"] == "/etc/mlops-operator/webhook"
    mount = {"name": "webhook-cert", "mountPath": "/etc/mlops-operator/webhook", "readOnly": True}
    assert mount in container["volumeMounts"]
    [deployment] = by_kind(mounted, "Deployment")
    assert {"name": "webhook-cert", "secret": {"secretName": "approvals-tls"}} in deployment["spec"]["template"][
        "spec"
    ]["volumes"]
