"""Fixtures for tests against a real kube-apiserver + etcd."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from mlops_operator import contracts
from mlops_operator.metrics import Metrics
from tests.integration import apiserver
from tests.integration.reconcile_harness import Cluster, install_current_crds, operator

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
        name = body["metadata"]["name"]
        try:
            ext.create_custom_resource_definition(body)
        except client.ApiException as exc:  # an earlier module installed them (current_crds): the files win
            if exc.status != 409:
                raise
            body["metadata"]["resourceVersion"] = ext.read_custom_resource_definition(name).metadata.resource_version
            ext.replace_custom_resource_definition(name, body)
        names.append(name)
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
    _delete_custom_objects(api_client, name)
    core.delete_namespace(name)


def _delete_custom_objects(api_client: client.ApiClient, namespace: str) -> None:
    """Delete the namespace's Datasets, Models and DriftMonitors.

    Only etcd and kube-apiserver run here: no namespace controller empties a deleted namespace, so
    its objects would outlive the test and show up in every later cluster-wide listing (a
    deliberately invalid Model of the admission tests once failed `kubectl mlops status -A`).
    """
    objects = client.CustomObjectsApi(api_client)
    for plural in ("driftmonitors", "models", "datasets"):
        try:
            objects.delete_collection_namespaced_custom_object(contracts.GROUP, contracts.VERSION, namespace, plural)
        except client.ApiException as exc:
            if exc.status != 404:  # CRDs not installed in this session
                raise


# --- the real operator against this apiserver (reconcile_harness) ---------------------------------
@pytest.fixture(scope="module")
def current_crds(api_client: client.ApiClient) -> None:
    """The CRDs as shipped in crds/, installed or updated once per module."""
    install_current_crds(api_client)


@pytest.fixture
def cluster(
    api_client: client.ApiClient,
    namespace: str,
    current_crds: None,
    apiserver_instance: apiserver.ApiServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Cluster]:
    """The operator watching the test namespace (its Metrics as `cluster.metrics`), kopf logged in too."""
    monkeypatch.setenv("KUBECONFIG", str(apiserver_instance.kubeconfig))  # kopf's own login reads it
    with operator(apiserver_instance.kubeconfig, namespace) as metrics:
        cluster = Cluster(api_client, namespace)
        cluster.metrics = metrics  # type: ignore[attr-defined]
        yield cluster


@pytest.fixture
def running(
    api_client: client.ApiClient, namespace: str, current_crds: None, apiserver_instance: apiserver.ApiServer
) -> Iterator[tuple[Cluster, Metrics]]:
    """The operator watching the test namespace, and its Metrics."""
    with operator(apiserver_instance.kubeconfig, namespace) as metrics:
        yield Cluster(api_client, namespace), metrics
