"""Issue 12 against a real kube-apiserver: what a tenant may point the operator at. A custom trainer
image off the administrator's list, a Dataset source outside the namespace's own prefix, and an object
store whose one credential every namespace shares are each refused with a condition and an Event,
before any Job exists; what the administrator allows runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from mlops_operator import contracts
from mlops_operator.api.v1alpha1 import Dataset, Model
from tests.integration import apiserver
from tests.integration.reconcile_harness import Cluster, eventually, operator, resource
from tests.integration.test_reconcile_model import model_spec, ready_dataset, training_job

pytestmark = pytest.mark.integration
ALLOWED = "registry.example.com/team-a/trainer:1.0"
Start = Callable[..., Cluster]


@pytest.fixture
def start(
    api_client: client.ApiClient,
    namespace: str,
    current_crds: None,
    apiserver_instance: apiserver.ApiServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Start]:
    """Starts the operator with the settings a test gives, watching the test namespace."""
    monkeypatch.setenv("KUBECONFIG", str(apiserver_instance.kubeconfig))
    stack: list[Any] = []

    def run(**settings: Any) -> Cluster:
        running = operator(apiserver_instance.kubeconfig, namespace, **settings)
        running.__enter__()
        stack.append(running)
        return Cluster(api_client, namespace)

    yield run
    for running in reversed(stack):
        running.__exit__(None, None, None)


def refused(c: Cluster, kind: str, name: str, reason: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        found = c.condition(kind, name, "Ready")
        return found if found is not None and found["reason"] == reason else None

    condition = eventually(ready, what=f"{kind} {name} refused with {reason}")
    eventually(lambda: reason in [r for r, _ in c.events(name)], what=f"a {reason} Event")
    return condition


def test_custom_images_need_the_administrators_allowlist(start: Start) -> None:
    c = start(allowed_trainer_images=("registry.example.com/team-a/*",))
    ready_dataset(c)
    evil = {"image": "docker.io/attacker/steal:latest", "command": ["sh", "-c", "cat /proc/self/environ"]}
    c.create(resource(Model, "evil", model_spec(trainer=evil)))
    ready = refused(c, "Model", "evil", "ImageNotAllowed")
    assert ready["status"] == "False" and "'docker.io/attacker/steal:latest' is not on" in ready["message"]
    assert "registry.example.com/team-a/*" in ready["message"]
    c.create(resource(Model, "custom", model_spec(trainer={"image": ALLOWED})))
    job = training_job(c, "custom", 1)  # the allowed image trains
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == ALLOWED
    assert c.jobs(**{contracts.LABEL_MODEL: "evil"}) == []
    # an estimator instead lifts the refusal
    c.patch("Model", "evil", {"spec": {"trainer": {"image": None, "command": None,
                                                   "estimator": "sklearn.linear_model.LogisticRegression"}}})
    training_job(c, "evil", 1)


def test_sources_outside_the_namespaces_prefix_are_refused(start: Start) -> None:
    c = start(allowed_sources=("s3://public/reference/",))
    for name, uri in {
        "traverse": "file:///var/lib/mlops/../../proc/self/environ",
        "abs": "file:///etc/passwd",
        "bucket": "s3://other-team/private/",
    }.items():
        c.create(resource(Dataset, name, {"source": {"uri": uri}, "schema": {"target": "target"}}))
        ready = refused(c, "Dataset", name, "SourceNotAllowed")
        assert ready["status"] == "False" and uri in ready["message"], ready
        profiled = c.condition("Dataset", name, "Profiled")
        assert profiled is not None and profiled["reason"] == "SourceNotAllowed"
        assert c.jobs(**{contracts.LABEL_DATASET: name}) == []
    c.create(resource(Dataset, "ref", {"source": {"uri": "s3://public/reference/x.csv"}, "schema": {"target": "t"}}))
    eventually(lambda: c.jobs(**{contracts.LABEL_DATASET: "ref"}), what="an allowed source is profiled")


@pytest.mark.parametrize(
    ("settings", "runs"),
    [
        ({"store_secret": "s3"}, False),
        ({"store_secret": "s3", "store_credentials": "per-namespace"}, True),
        ({"store_secret": "s3", "store_credentials": "shared"}, True),
    ],
)
def test_an_object_store_shared_by_every_namespace_needs_a_declaration(
    start: Start, settings: dict[str, Any], runs: bool
) -> None:
    c = start(store_uri="s3://lake/mlops", store_claim="", **settings)
    c.create(resource(Dataset, "iris", {"source": {"uri": "sklearn://iris"}, "schema": {"target": "target"}}))
    if runs:
        eventually(lambda: c.jobs(**{contracts.LABEL_DATASET: "iris"}), what="profile Job")
        return
    ready = refused(c, "Dataset", "iris", "SharedStoreCredentials")
    assert "store.credentials: perNamespace" in ready["message"]
    assert c.jobs(**{contracts.LABEL_DATASET: "iris"}) == []

