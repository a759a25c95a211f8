"""Store settings reach every pod that does store I/O; credentials only by reference; notify gets nothing.

The operator does no store I/O itself (results reach it in termination messages), so every store
setting given to it is there only to be handed on: as values for the allowlisted non-secret ones
(settings.STORE_ENV_NAMES), as an envFrom reference to the store Secret for credentials.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator import contracts
from mlops_operator.settings import STORE_ENV_NAMES, Settings
from tests.unit.builders import workloads as w

REPO = Path(__file__).resolve().parents[2]
INSTALL_DOC = REPO / "docs" / "install.md"
CHART = REPO / "charts" / "mlops-operator"

# Credentials the backends read: the store Secret's business (envFrom), never a value the operator
# renders. And what a webhook injects into each pod for its own ServiceAccount: never copied.
SECRET_NAMES = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_CONNECTION_STRING",
        "AZURE_STORAGE_SAS_TOKEN",
        "AZURE_STORAGE_CLIENT_SECRET",
        "AZURE_STORAGE_CLIENT_ID",
        "AZURE_STORAGE_TENANT_ID",
    }
)
INJECTED_NAMES = frozenset(
    {
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_AUTHORITY_HOST",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    }
)
VALUES = {
    "AZURE_STORAGE_ACCOUNT_NAME": "mlopsacct",
    "AWS_ENDPOINT_URL": "http://minio.minio.svc:9000",
    "AWS_ENDPOINT_URL_S3": "https://s3.eu-west-1.amazonaws.com",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_REGION": "eu-west-1",
}
STORE_NAME = re.compile(r"\b(AZURE_[A-Z0-9_]+|AWS_[A-Z0-9_]+)\b")


def documented_store_settings() -> set[str]:
    """The store settings docs/install.md names, less the credentials: all must be allowlisted."""
    return set(STORE_NAME.findall(INSTALL_DOC.read_text())) - SECRET_NAMES - INJECTED_NAMES


def operator_env() -> dict[str, str]:
    """The operator's environment with every store setting set, and credentials beside them."""
    secrets = {name: f"leak-{name.lower()}" for name in SECRET_NAMES | INJECTED_NAMES}
    return {
        **secrets,
        **VALUES,
        "MLOPS_STORE_URI": "s3://bucket/mlops",
        "MLOPS_STORE_CLAIM": "",
        "MLOPS_STORE_SECRET": "mlops-store",
        "MLOPS_AZURE_CLIENT_ID": "0000-client",
    }


def test_the_allowlist_holds_every_documented_store_setting_and_no_credential() -> None:
    allowlist = set(STORE_ENV_NAMES.values())
    assert documented_store_settings() <= allowlist, "a documented store setting no workload pod would get"
    assert not allowlist & (SECRET_NAMES | INJECTED_NAMES)
    assert set(VALUES) == allowlist  # this test sets every one of them


@pytest.mark.parametrize("role", w.STORE_ROLES)
def test_every_store_setting_reaches_the_pods_that_use_the_store(role: str) -> None:
    template = w.render(Settings.from_env(operator_env()))[role]
    container = w.container(template)
    values = w.env_values(template)
    assert {name: values.get(name) for name in VALUES} == VALUES
    assert values[contracts.ENV_STORE_URI] == "s3://bucket/mlops"
    assert container["envFrom"] == [{"secretRef": {"name": "mlops-store"}}]
    rendered = json.dumps(template)
    assert "leak-" not in rendered, "a credential was copied into the pod as a value"
    assert not {e["name"] for e in container["env"]} & (SECRET_NAMES | INJECTED_NAMES)


def test_the_notify_pod_gets_no_store_setting_and_no_store_credentials() -> None:
    template = w.render(Settings.from_env(operator_env()))["notify"]
    container = w.container(template)
    names = {e["name"] for e in container["env"]}
    assert not names & (set(VALUES) | SECRET_NAMES | INJECTED_NAMES | {contracts.ENV_STORE_URI})
    assert "envFrom" not in container
    rendered = json.dumps(template)
    assert not any(value in rendered for value in (*VALUES.values(), "mlops-store", "leak-"))
    assert contracts.LABEL_WORKLOAD_IDENTITY not in template["metadata"]["labels"]
    assert all("persistentVolumeClaim" not in v for v in template["spec"]["volumes"])


def _chart_operator_env(helm: str, *values: str) -> dict[str, str]:
    done = subprocess.run(
        [helm, "template", "mlops-operator", str(CHART), "-n", "mlops-system", "--kube-version", "1.32.0", *values],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    objects: list[dict[str, Any]] = [o for o in yaml.safe_load_all(done.stdout) if o]
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (operator,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in operator["env"] if "value" in e}


@pytest.mark.parametrize(
    "values",
    [
        ("--set", "store.type=s3", "--set", "store.s3.bucket=mlops-bucket", "--set", "store.s3.secretRef.name=mlops-s3",
         "--set", "store.s3.endpoint=http://minio.minio:9000", "--set", "store.s3.region=eu-west-1"),
        ("--set", "store.type=azure", "--set", "store.azure.storageAccount=mlopsacct",
         "--set", "store.azure.container=mlops", "--set", "store.azure.clientId=00000000-0000-0000-0000-000000000000"),
    ],
    ids=["s3", "azure"],
)  # fmt: skip
def test_every_store_setting_the_chart_gives_the_operator_reaches_the_workloads(helm: str, values: tuple[str]) -> None:
    env = _chart_operator_env(helm, *values)
    handed_on = {name: value for name, value in env.items() if not name.startswith("MLOPS_")}
    assert handed_on, "the chart sets no store setting for this store type"
    assert set(handed_on) <= set(STORE_ENV_NAMES.values()), "the operator would keep these to itself"
    settings = Settings.from_env(env)
    for role, template in w.render(settings).items():
        got = w.env_values(template)
        expected = {} if role == "notify" else handed_on
        assert {k: v for k, v in got.items() if k in handed_on} == expected, role
