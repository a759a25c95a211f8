"""Store settings and credentials reach the pods that touch the store, and only those."""

from __future__ import annotations

import pytest

from mlops_operator import contracts
from mlops_operator.builders import pods
from mlops_operator.settings import Settings, StoreEnv
from tests.unit.builders import workloads as w

S3 = Settings(
    store_uri="s3://bucket/prefix",
    store_claim="",
    store_secret="mlops-s3",
    store_env=StoreEnv(aws_endpoint_url="http://minio.minio:9000", aws_default_region="eu-west-1"),
)
AZURE = Settings(
    store_uri="az://ml/store",
    store_claim="",
    azure_client_id="0000-client",
    store_env=StoreEnv(azure_storage_account_name="mlopsacct"),
)


@pytest.mark.parametrize("role", w.STORE_ROLES)
def test_store_pods_get_the_settings_as_values_and_the_credentials_by_reference(role: str) -> None:
    template = w.render(S3)[role]
    container = w.container(template)
    values = w.env_values(template)
    assert values[contracts.ENV_STORE_URI] == "s3://bucket/prefix"
    assert values["AWS_ENDPOINT_URL"] == "http://minio.minio:9000" and values["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert container["envFrom"] == [{"secretRef": {"name": "mlops-s3"}}]
    assert [v["name"] for v in template["spec"]["volumes"]] == [pods.TMP_VOLUME]


@pytest.mark.parametrize("role", w.STORE_ROLES)
def test_store_pods_on_azure_get_the_account_and_the_identity_label(role: str) -> None:
    template = w.render(AZURE)[role]
    assert w.env_values(template)["AZURE_STORAGE_ACCOUNT_NAME"] == "mlopsacct"
    assert template["metadata"]["labels"][contracts.LABEL_WORKLOAD_IDENTITY] == "true"
    assert "envFrom" not in w.container(template)


@pytest.mark.parametrize("settings", [S3, AZURE, Settings(store_secret="mlops-s3")], ids=["s3", "azure", "pvc"])
def test_the_notify_pod_gets_nothing_of_the_store(settings: Settings) -> None:
    template = w.render(settings)["notify"]
    container = w.container(template)
    assert "envFrom" not in container
    assert [e["name"] for e in container["env"]] == [contracts.ENV_WEBHOOK_URL, "HOME"]
    assert [v["name"] for v in template["spec"]["volumes"]] == [pods.TMP_VOLUME]
    assert [m["name"] for m in container["volumeMounts"]] == [pods.TMP_VOLUME]
    # no workload-identity label: the webhook would project a token that reaches the store
    assert contracts.LABEL_WORKLOAD_IDENTITY not in template["metadata"]["labels"]


def test_store_settings_come_after_the_uri_and_unset_ones_are_not_rendered() -> None:
    names = [e["name"] for e in w.container(w.render(S3)["train"])["env"]]
    assert names[:4] == [contracts.ENV_STORE_URI, "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", contracts.ENV_IMAGE]
    plain = [e["name"] for e in w.container(w.render(Settings())["train"])["env"]]
    assert not any(n.startswith(("AWS_", "AZURE_")) for n in plain)
