"""Issue 15 item 3 on the local cluster: a Model's transitions reach a CloudEvents receiver on the host
(bound to the cluster bridge, where pods reach the host) from a real notify-events pod, with a valid
HMAC from a mounted Secret; a second sink that is down gets retries, then a dead letter in status."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from mlops_operator.api.v1alpha1 import Dataset, Model
from tests.e2e.conftest import Cluster, operator_in_process
from tests.integration import reconcile_harness
from tests.integration.reconcile_harness import eventually, resource
from tests.integration.test_release_events import Receiver, closed_port_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
BRIDGE = "10.88.0.1"
KEY = b"e2e-release-events-key"
EVERY, ATTEMPTS = 1.0, 480


@pytest.fixture
def receiver(cluster: Cluster) -> Iterator[Receiver]:
    try:
        r = Receiver(BRIDGE, KEY)
    except OSError as exc:
        pytest.skip(f"cannot bind the cluster bridge {BRIDGE}: {exc}")
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def announcing(cluster: Cluster, image: str, namespace: str) -> Iterator[reconcile_harness.Cluster]:
    """The operator in this process, allowed to post over http to the bridge (a private address)."""
    with operator_in_process(cluster, image, namespace, webhook_allow_http=True, webhook_allow_private=True) as live:
        yield live


def test_events_reach_a_receiver_signed_and_a_down_sink_is_dead_lettered(
    announcing: reconcile_harness.Cluster, receiver: Receiver, cluster: Cluster, namespace: str
) -> None:
    c = announcing
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "ci-hmac"},
        "data": {"key": base64.b64encode(KEY).decode()},
    }
    cluster.apply(secret, namespace=namespace)
    c.create(resource(Dataset, "iris", {"source": {"uri": "sklearn://iris"}, "schema": {"target": "target"}}))
    sinks = [
        {"url": receiver.url, "secretRef": {"name": "ci-hmac", "key": "key"}},
        {"url": closed_port_url(BRIDGE), "secretRef": {"name": "ci-hmac", "key": "key"}},
    ]
    spec = {
        "datasetRef": {"name": "iris"},
        "trainer": {"estimator": "sklearn.tree.DecisionTreeClassifier", "params": {"max_depth": 2}},
        "validation": {"metric": "accuracy", "threshold": 0.5},
        "serving": {"enabled": False},
        "events": {"sinks": sinks, "types": ["trained", "approved"]},
    }
    c.create(resource(Model, "announced", spec))
    eventually(
        lambda: len(receiver.received) >= 2 or None,
        what="trained and approved at the receiver",
        every=EVERY,
        attempts=ATTEMPTS,
    )
    assert [e["type"] for e, _ in receiver.received] == [
        "dev.mlops.model.version.trained",
        "dev.mlops.model.version.approved",
    ]
    assert all(valid for _, valid in receiver.received)
    assert receiver.received[0][0]["data"]["metrics"]["accuracy"] > 0.5
    state = eventually(
        lambda: (s := c.status("Model", "announced").get("events")) and len(s.get("deadLetters") or []) == 2 and s,
        what="two dead letters",
        every=EVERY,
        attempts=ATTEMPTS,
    )
    assert {(d["sink"], d["reason"]) for d in state["deadLetters"]} == {(1, "WebhookUnreachable")}
    assert state["deadLetters"][0]["attempts"] == 4
    # the Event is posted after the status patch that carries the dead letters
    eventually(
        lambda: any(r == "EventDeadLettered" for r, _ in c.events("announced")),
        what="an EventDeadLettered Event",
        every=EVERY,
        attempts=ATTEMPTS,
    )
