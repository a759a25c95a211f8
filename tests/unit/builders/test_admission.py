"""The approvals webhook's configuration entry, and the settings it needs."""

from __future__ import annotations

import pytest

from mlops_operator.builders import admission
from mlops_operator.settings import Settings

ON = {"admission_port": 9443, "admission_cert_dir": "/certs", "admission_configuration": "mlops-approvals"}


def test_it_fails_closed_fast_and_only_for_models_in_the_watched_namespaces() -> None:
    settings = Settings(**ON, admission_service="mlops-system/mlops-operator-webhook", namespaces=("team-b", "team-a"))
    [webhook] = admission.webhooks(settings, "Q0E=")
    assert (webhook["failurePolicy"], webhook["timeoutSeconds"], webhook["sideEffects"]) == ("Fail", 5, "None")
    assert webhook["rules"][0]["resources"] == ["models"] and webhook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
    assert webhook["namespaceSelector"]["matchExpressions"][0]["values"] == ["team-a", "team-b"]
    service = {"namespace": "mlops-system", "name": "mlops-operator-webhook", "port": 443, "path": "/approvals"}
    assert webhook["clientConfig"] == {"service": service, "caBundle": "Q0E="}
    cluster_wide = admission.webhooks(Settings(**ON, admission_url="https://127.0.0.1:9443/"), None)[0]
    assert "namespaceSelector" not in cluster_wide
    assert cluster_wide["clientConfig"] == {"url": "https://127.0.0.1:9443/approvals"}


def test_the_match_condition_names_every_approval_relevant_field() -> None:
    expression = admission.match_expression()
    for needle in (
        "request.operation == 'CREATE'",
        "object.spec.approvedVersion",
        "'mlops.dev/approve'",
        "'mlops.dev/approvals'",
        "'mlops.dev/triggered-by'",
        "'mlops.dev/rejected-versions'",
        "'mlops.dev/retrain-requested'",
        "separationOfDuties",
    ):
        assert needle in expression
    # what it means is tested on a real API server: tests/integration/test_approvals.py


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("admission_configuration", "MLOPS_ADMISSION_CONFIGURATION"),
        ("admission_service", "MLOPS_ADMISSION_SERVICE or MLOPS_ADMISSION_URL"),
    ],
)
def test_an_enabled_webhook_without_what_it_needs_stops_the_operator(missing: str, named: str) -> None:
    values = {**ON, "admission_service": "ns/svc"}
    values[missing] = ""
    with pytest.raises(ValueError, match=named):
        Settings(**values)  # type: ignore[arg-type]
    env = {"MLOPS_ADMISSION_PORT": "9443", "MLOPS_ADMISSION_CERT_DIR": "/c", "MLOPS_ADMISSION_CONFIGURATION": "x"}
    assert Settings.from_env({**env, "MLOPS_ADMISSION_URL": "https://h"}).admission_port == 9443
    assert Settings.from_env({}).admission_port == 0


def test_without_a_mounted_certificate_the_operator_makes_one_for_the_service() -> None:
    import ssl
    import subprocess

    from mlops_operator.handlers import webhook_tls

    hosts = webhook_tls.hosts_of("mlops-system/mlops-operator-webhook", "")
    assert hosts[0] == "mlops-operator-webhook.mlops-system.svc"
    context, ca_pem = webhook_tls.self_signed(hosts)
    assert isinstance(context, ssl.SSLContext) and ca_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    text = subprocess.run(["openssl", "x509", "-noout", "-text"], input=ca_pem, capture_output=True, check=True).stdout
    assert b"CA:TRUE" in text
    assert webhook_tls.hosts_of("", "https://127.0.0.1:9443") == ["127.0.0.1"]
