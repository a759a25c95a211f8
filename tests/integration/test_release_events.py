"""Issue 15 item 3 against a real kube-apiserver: registry transitions become notify-events Jobs; the
test plays kubelet by mounting the Job's Secret keys as the pod would and running the real workload
against receivers on 127.0.0.1, then the operator records deliveries and dead letters."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from mlops_operator import contracts
from mlops_operator.api.v1alpha1 import Model
from mlops_operator.api.v1alpha1.events import EventsPlan
from mlops_operator.builders import events
from mlops_operator.kube import ApiError
from mlops_operator.workloads import common, notify_events
from tests.integration import apiserver
from tests.integration.reconcile_harness import Cluster, eventually, operator, resource, train_result
from tests.integration.test_reconcile_model import model_spec, ready_dataset, training_job

pytestmark = pytest.mark.integration
KEY = b"a-shared-hmac-key"


class Receiver:
    """A CloudEvents sink on 127.0.0.1 that keeps each event with whether its HMAC verified."""

    def __init__(self, host: str = "127.0.0.1", key: bytes = KEY) -> None:
        self.received: list[tuple[dict[str, Any], bool]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                mac = hmac.new(key, self.headers["X-Mlops-Timestamp"].encode() + b"." + body, hashlib.sha256)
                valid = hmac.compare_digest("sha256=" + mac.hexdigest(), self.headers.get("X-Mlops-Signature", ""))
                receiver.received.append((json.loads(body), valid))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def closed_port_url(host: str = "127.0.0.1") -> str:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return f"http://{host}:{sock.getsockname()[1]}/events"  # nothing listens once it is closed


class EventsJobRunner:
    """Play kubelet for notify-events Jobs: mount the keys the Job's projected volume names (read from
    the Secrets), run the real workload, finish the Job with its result. Keeps every plan it ran."""

    def __init__(self, c: Cluster, api: client.ApiClient, keys: Path) -> None:
        self.c, self.keys = c, keys
        self.plans: list[EventsPlan] = []
        self.core = client.CoreV1Api(api)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> EventsJobRunner:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)

    def _loop(self) -> None:
        while not self.stop.wait(0.05):
            with contextlib.suppress(ApiError):
                for job in self.c.jobs(**{contracts.LABEL_COMPONENT: str(contracts.Component.EVENTS)}):
                    if not (job.get("status") or {}).get("conditions"):
                        self._run(job)

    def _run(self, job: dict[str, Any]) -> None:
        pod = job["spec"]["template"]["spec"]
        [volume] = [v for v in pod["volumes"] if v["name"] == events.KEYS_VOLUME]
        for source in volume["projected"]["sources"]:
            secret = self.core.read_namespaced_secret(source["secret"]["name"], self.c.ns)
            for item in source["secret"]["items"]:
                (self.keys / item["path"]).write_bytes(base64.b64decode(secret.data[item["key"]]))
        args = pod["containers"][0]["args"]
        plan = EventsPlan.model_validate_json(args[args.index(contracts.PLAN_FLAG) + 1])
        self.plans.append(plan)
        result = notify_events.deliver(plan.model_copy(update={"backoff_seconds": 0.01}))
        self.c.finish_job(job, message=common.encode_result(result).decode())


@pytest.fixture
def started(
    api_client: client.ApiClient,
    namespace: str,
    current_crds: None,
    apiserver_instance: apiserver.ApiServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[tuple[Cluster, EventsJobRunner]]:
    monkeypatch.setenv("KUBECONFIG", str(apiserver_instance.kubeconfig))
    monkeypatch.setenv(notify_events.ENV_KEYS_DIR, str(tmp_path))
    client.CoreV1Api(api_client).create_namespaced_secret(
        namespace, {"metadata": {"name": "ci-hmac"}, "data": {"key": base64.b64encode(KEY).decode()}}
    )
    settings = {"webhook_allow_http": True, "webhook_allow_private": True}
    with operator(apiserver_instance.kubeconfig, namespace, **settings):
        c = Cluster(api_client, namespace)
        with EventsJobRunner(c, api_client, tmp_path) as runner:
            yield c, runner


def sink(url: str) -> dict[str, Any]:
    return {"url": url, "secretRef": {"name": "ci-hmac", "key": "key"}}


def test_transitions_arrive_signed_and_are_recorded(
    started: tuple[Cluster, EventsJobRunner], receiver: Receiver
) -> None:
    c, runner = started
    ready_dataset(c)
    c.create(resource(Model, "announced", model_spec(events={"sinks": [sink(receiver.url)]})))
    c.finish_job(training_job(c, "announced", 1), message=train_result(1, 0.95))
    eventually(lambda: c.deployment("announced-server"), what="Deployment v1")
    c.roll_out("announced-server")
    types = ["trained", "approved", "serving"]
    eventually(
        lambda: [e["type"].rsplit(".", 1)[-1] for e, _ in receiver.received] == types or None,
        what="trained, approved and serving events at the receiver",
    )
    assert all(valid for _, valid in receiver.received)
    first = receiver.received[0][0]
    assert first["source"] == "/apis/mlops.dev/v1alpha1/namespaces/" + c.ns + "/models/announced"
    assert first["subject"] == "1" and first["data"]["metrics"]["accuracy"] == 0.95
    ids = [e["id"] for e, _ in receiver.received]
    state = eventually(
        lambda: (s := c.status("Model", "announced").get("events")) and s["delivered"] == 3 and s, what="3 delivered"
    )
    assert state["recent"] == ids and not state.get("deadLetters")
    assert all(len(plan.events) <= events.MAX_BATCH for plan in runner.plans)
    # settled Jobs are removed; the next transition's batch holds only what was not sent yet
    eventually(lambda: not c.jobs(**{contracts.LABEL_COMPONENT: "events"}) or None, what="settled Jobs deleted")
    stamp = "2026-03-02T00:00:00Z;v2"
    c.patch("Model", "announced", {"metadata": {"annotations": {contracts.ANNOTATION_RETRAIN_REQUESTED: stamp}}})
    c.finish_job(training_job(c, "announced", 2), message=train_result(2, 0.97, 0.95))
    eventually(lambda: any(e["subject"] == "2" for e, _ in receiver.received) or None, what="v2's events")
    sent = [e["id"] for e, _ in receiver.received]
    assert sent[:3] == ids and len(set(sent)) == len(sent)


def test_a_sink_that_is_down_gets_retries_then_dead_letters(
    started: tuple[Cluster, EventsJobRunner], receiver: Receiver
) -> None:
    c, _ = started
    ready_dataset(c)
    spec = model_spec(events={"sinks": [sink(receiver.url), sink(closed_port_url())], "types": ["trained"]})
    c.create(resource(Model, "unheard", spec))
    c.finish_job(training_job(c, "unheard", 1), message=train_result(1, 0.95))
    state = eventually(
        lambda: (s := c.status("Model", "unheard").get("events")) and s.get("deadLetters") and s, what="a dead letter"
    )
    [letter] = state["deadLetters"]
    assert letter["sink"] == 1 and letter["attempts"] == 4 and letter["reason"] == "WebhookUnreachable"
    assert letter["type"] == "dev.mlops.model.version.trained" and letter["version"] == 1
    assert "127.0.0.1" not in json.dumps(state)  # the sink's URL is not repeated in status
    assert state["delivered"] == 0  # not every sink took it
    assert [e["type"] for e, _ in receiver.received] == ["dev.mlops.model.version.trained"]  # the live sink did
    # the Event is posted after the status patch that carries the dead letter
    eventually(lambda: any(r == "EventDeadLettered" for r, _ in c.events("unheard")), what="an EventDeadLettered Event")
