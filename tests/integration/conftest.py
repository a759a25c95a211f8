"""Fixtures for tests against a real kube-apiserver + etcd."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from tests.integration import apiserver

REPO = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def apiserver_instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[apiserver.ApiServer]:
    server = apiserver.start(tmp_path_factory.mktemp("apiserver"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def api_client(apiserver_instance: apiserver.ApiServer) -> client.ApiClient:
    return config.new_client_from_config(str(apiserver_instance.kubeconfig))


@pytest.fixture(scope="session")
def crds_installed(api_client: client.ApiClient) -> list[str]:
    ext = client.ApiextensionsV1Api(api_client)
    names = []
    for path in sorted((REPO / "crds").glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        ext.create_custom_resource_definition(body)
        names.append(body["metadata"]["name"])
    for name in names:  # bounded wait for Established
        for _ in range(100):
            crd = ext.read_custom_resource_definition(name)
            conds = {c.type: c.status for c in (crd.status.conditions or [])}
            if conds.get("Established") == "True":
                break
            import time

            time.sleep(0.1)
        else:
            raise RuntimeError(f"CRD {name} never became Established")
    return names


@pytest.fixture
def namespace(api_client: client.ApiClient) -> Iterator[str]:
    name = f"it-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace({"metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    yield name
    core.delete_namespace(name)
