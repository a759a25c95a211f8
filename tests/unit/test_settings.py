from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from mlops_operator.builders import jobs, namespace, pods
from mlops_operator.settings import STORE_ENV_NAMES, Settings, StoreEnv, parse_quantity
from tests.unit import factories as f


def test_settings_read_the_variables_the_chart_sets() -> None:
    env = {
        "MLOPS_IMAGE": "registry/mlops:1.2",
        "MLOPS_NAMESPACES": "team-a, team-b",
        "MLOPS_STORE_URI": "s3://bucket/prefix",
        "MLOPS_STORE_CLAIM": "",
        "MLOPS_STORE_SECRET": "mlops-s3",
        "MLOPS_STORE_ACCESS_MODES": "ReadWriteMany",
        "MLOPS_SERVING_SERVICE_ACCOUNT": "mlops-serving",
        "MLOPS_RESYNC_SECONDS": "45",
    }
    s = Settings.from_env(env)
    assert s.image == "registry/mlops:1.2" and s.namespaces == ("team-a", "team-b")
    assert s.store_access_modes == ("ReadWriteMany",) and s.resync_seconds == 45.0
    assert Settings.from_env({}) == Settings()


def test_object_store_pods_get_credentials_by_reference_and_no_claim() -> None:
    s = Settings(store_uri="s3://bucket/prefix", store_claim="", store_secret="mlops-s3")
    job = jobs.profile_job(f.dataset(), s, 0)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "mlops-s3"}}]
    assert [v["name"] for v in job["spec"]["template"]["spec"]["volumes"]] == [pods.TMP_VOLUME]
    assert namespace.store_claim("team-a", s) is None


def test_workload_identity_labels_pods_and_annotates_accounts() -> None:
    s = Settings(azure_client_id="abc")
    job = jobs.profile_job(f.dataset(), s, 0)
    assert job["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    accounts = namespace.service_accounts("team-a", s)
    assert all(a["metadata"]["annotations"] == {"azure.workload.identity/client-id": "abc"} for a in accounts)
    assert all(a["automountServiceAccountToken"] is False for a in accounts)


def test_store_settings_are_read_by_the_backends_own_names_and_secrets_are_not_read() -> None:
    env = {
        "AZURE_STORAGE_ACCOUNT_NAME": "mlopsacct",
        "AWS_ENDPOINT_URL": "http://minio.minio:9000",
        "AWS_ENDPOINT_URL_S3": "https://s3.eu-west-1.amazonaws.com",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": " eu-west-1 ",
        # credentials, and what a webhook injects per pod: never settings
        "AWS_SECRET_ACCESS_KEY": "s3cr3t-key",
        "AWS_ACCESS_KEY_ID": "s3cr3t-id",
        "AZURE_STORAGE_ACCOUNT_KEY": "s3cr3t-account-key",
        "AZURE_STORAGE_SAS_TOKEN": "s3cr3t-sas",
        "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
        "AWS_ROLE_ARN": "arn:aws:iam::1:role/operator",
    }
    s = Settings.from_env(env)
    assert s.store_env == StoreEnv(
        azure_storage_account_name="mlopsacct",
        aws_endpoint_url="http://minio.minio:9000",
        aws_endpoint_url_s3="https://s3.eu-west-1.amazonaws.com",
        aws_default_region="eu-west-1",
        aws_region="eu-west-1",
    )
    assert "s3cr3t" not in repr(s) and "azure-identity-token" not in repr(s) and "arn:aws" not in repr(s)
    assert dict(s.store_env.pairs()) == {
        name: value.strip() for name, value in env.items() if name in STORE_ENV_NAMES.values()
    }
    assert StoreEnv().pairs() == ()
    assert Settings.from_env({"MLOPS_AWS_ENDPOINT_URL": "http://x"}).store_env == StoreEnv()


@pytest.mark.parametrize(
    "env",
    [
        {"AWS_ENDPOINT_URL": "http://user:pass@minio:9000"},
        {"AWS_ENDPOINT_URL_S3": "https://s3.example/?X-Amz-Signature=abc"},
        {"AWS_ENDPOINT_URL": "minio:9000"},
        {"AWS_ENDPOINT_URL": "ftp://minio"},
        {"AWS_DEFAULT_REGION": "eu west 1"},
        {"AZURE_STORAGE_ACCOUNT_NAME": "acct\nAWS_SECRET_ACCESS_KEY=x"},
    ],
)
def test_store_settings_that_could_carry_credentials_or_break_a_pod_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        Settings.from_env(env)


def test_default_limits_and_ceilings_are_read_from_mlops_variables() -> None:
    env = {
        "MLOPS_DEFAULT_LIMIT_CPU": "500m",
        "MLOPS_DEFAULT_LIMIT_MEMORY": "768Mi",
        "MLOPS_MAX_CPU": "16",
        "MLOPS_MAX_MEMORY": "64Gi",
        "MLOPS_MAX_REPLICAS": "10",
        "MLOPS_MAX_DEADLINE_SECONDS": "600",
        "MLOPS_MAX_N_ESTIMATORS": "300",
        "MLOPS_MAX_HIDDEN_LAYER_SIZE": "256",
        "MLOPS_MAX_CACHE_SIZE_MB": "512",
    }
    assert Settings.from_env(env) == Settings(
        default_limit_cpu="500m",
        default_limit_memory="768Mi",
        max_cpu="16",
        max_memory="64Gi",
        max_replicas=10,
        max_deadline_seconds=600,
        max_n_estimators=300,
        max_hidden_layer_size=256,
        max_cache_size_mb=512,
    )
    d = Settings()
    assert (d.default_limit_cpu, d.default_limit_memory, d.max_cpu, d.max_memory) == ("1", "1Gi", "8", "32Gi")
    assert (d.max_replicas, d.max_deadline_seconds, d.max_n_estimators) == (20, 86400, 2000)


@pytest.mark.parametrize(
    "values",
    [
        {"default_limit_cpu": "two"},
        {"max_memory": "1GB"},
        {"default_limit_memory": "0"},
        {"default_limit_cpu": "9"},  # above the default ceiling of 8
        {"default_limit_memory": "2Gi", "max_memory": "1Gi"},
        {"max_replicas": 0},
        {"max_deadline_seconds": -1},
    ],
)
def test_limit_settings_that_cannot_work_fail_at_start_up(values: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Settings(**values)


@pytest.mark.parametrize(
    ("quantity", "value"),
    [("500m", "0.5"), ("2", "2"), ("1.5", "1.5"), ("256Mi", str(256 * 2**20)), ("1Gi", str(2**30)), ("1G", "1e9")],
)
def test_quantities_are_parsed_as_kubernetes_does(quantity: str, value: str) -> None:
    assert parse_quantity(quantity) == Decimal(value)


def test_workload_pod_defaults_are_read_from_mlops_variables() -> None:
    env = {
        "MLOPS_IMAGE_PULL_SECRETS": "registry-creds, mirror-creds",
        "MLOPS_NODE_SELECTOR": '{"kubernetes.io/os": "linux"}',
        "MLOPS_TOLERATIONS": '[{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}]',
        "MLOPS_AFFINITY": '{"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": '
        '[{"weight": 10, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}]}}',
        "MLOPS_PRIORITY_CLASS_NAME": "ml-batch",
    }
    defaults = Settings.from_env(env).pod_defaults
    assert [s.name for s in defaults.image_pull_secrets or []] == ["registry-creds", "mirror-creds"]
    assert defaults.node_selector == {"kubernetes.io/os": "linux"}
    assert defaults.dump()["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
    ]
    assert defaults.affinity is not None and defaults.affinity.pod_anti_affinity is not None
    assert defaults.priority_class_name == "ml-batch"
    assert Settings.from_env({}).pod_defaults.dump() == {}
    assert Settings.from_env({"MLOPS_NODE_SELECTOR": " ", "MLOPS_IMAGE_PULL_SECRETS": ","}).pod_defaults.dump() == {}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MLOPS_NODE_SELECTOR": "pool=gpu"}, "MLOPS_NODE_SELECTOR is not JSON"),
        ({"MLOPS_TOLERATIONS": '{"key": "a"}'}, "MLOPS_TOLERATIONS"),  # a list, not one toleration
        ({"MLOPS_TOLERATIONS": '[{"value": "x"}]'}, "MLOPS_TOLERATIONS"),  # no key needs Exists
        (
            {"MLOPS_AFFINITY": '{"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}'},
            "MLOPS_AFFINITY",
        ),
        ({"MLOPS_PRIORITY_CLASS_NAME": "system-node-critical"}, "MLOPS_PRIORITY_CLASS_NAME"),
        ({"MLOPS_IMAGE_PULL_SECRETS": "Bad Name"}, "MLOPS_IMAGE_PULL_SECRETS"),
    ],
)
def test_workload_pod_defaults_that_no_pod_could_have_fail_at_start_up(env: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        Settings.from_env(env)
