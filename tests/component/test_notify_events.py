"""The notify-events workload against real HTTP receivers on 127.0.0.1: signed CloudEvents, retries,
and a receiver that is down."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlops_operator import contracts
from mlops_operator.api.v1alpha1.events import EventsPlan
from mlops_operator.workloads import notify_events

from .conftest import Run, run_cli, run_main

KEYS = [b"first-sink-hmac-key", b"second-sink-hmac-key"]
EVENTS = [
    {
        "specversion": "1.0",
        "id": f"id-{n}",
        "source": "/apis/mlops.dev/v1alpha1/namespaces/ns/models/m",
        "type": "dev.mlops.model.version.serving",
        "subject": str(n),
        "time": "2026-01-02T03:00:00+00:00",
        "datacontenttype": "application/json",
        "data": {"version": n},
    }
    for n in (1, 2, 3)
]


@dataclass
class Receiver:
    """A CloudEvents sink that verifies the signature as a receiver would, and answers as scripted."""

    key: bytes
    port: int = 0
    answers: list[int] = field(default_factory=list)  # statuses to answer first, then 202
    received: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"


def verify(key: bytes, headers: Any, body: bytes) -> bool:
    timestamp = headers["X-Mlops-Timestamp"]
    expected = "sha256=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Mlops-Signature"])


def _serve(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.attempts += 1
            status = receiver.answers.pop(0) if receiver.answers else 202
            if status == 202:
                receiver.received.append(
                    {
                        "event": json.loads(body),
                        "valid": verify(receiver.key, self.headers, body),
                        "contentType": self.headers["Content-Type"],
                    }
                )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture
def first() -> Iterator[Receiver]:
    yield from _serve(Receiver(KEYS[0]))


@pytest.fixture
def second() -> Iterator[Receiver]:
    yield from _serve(Receiver(KEYS[1]))


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "keys"
    directory.mkdir()
    for i, key in enumerate(KEYS):
        (directory / f"sink-{i}").write_bytes(key + b"\n")  # a trailing newline, as kubectl create secret may add
    monkeypatch.setenv(notify_events.ENV_KEYS_DIR, str(directory))
    return directory


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


def _run(termination_log: Path, sinks: list[str], **plan: Any) -> Run:
    spec = EventsPlan(events=EVENTS, sinks=sinks, allow_http=True, allow_private=True, backoff_seconds=0.01, **plan)
    return run_main(notify_events.main, [contracts.PLAN_FLAG, spec.model_dump_json(by_alias=True)], termination_log)


def test_every_event_reaches_every_sink_signed_with_its_key(
    first: Receiver, second: Receiver, keys: Path, termination_log: Path
) -> None:
    run = _run(termination_log, [first.url(), second.url()])
    assert run.exit_code == 0
    assert run.result == {"ok": True, "events": 3, "failures": []}
    for receiver in (first, second):
        assert [r["event"]["id"] for r in receiver.received] == ["id-1", "id-2", "id-3"]  # in order
        assert all(r["valid"] for r in receiver.received)
        assert {r["contentType"] for r in receiver.received} == {"application/cloudevents+json"}
        assert receiver.received[0]["event"] == EVENTS[0]


def test_a_signature_does_not_verify_with_another_key(first: Receiver, keys: Path, termination_log: Path) -> None:
    first.key = KEYS[1]  # the receiver holds the wrong key: the MAC must not match
    _run(termination_log, [first.url()])
    assert first.received and not any(r["valid"] for r in first.received)


def test_a_failing_answer_is_retried_until_it_succeeds(first: Receiver, keys: Path, termination_log: Path) -> None:
    first.answers = [503, 500]
    run = _run(termination_log, [first.url()], attempts=3)
    assert run.result["failures"] == []
    assert first.attempts == 5  # id-1 three times, then id-2 and id-3 once
    assert [r["event"]["id"] for r in first.received] == ["id-1", "id-2", "id-3"]


def test_a_receiver_that_is_down_gets_retries_then_a_failure_result(
    second: Receiver, keys: Path, termination_log: Path
) -> None:
    down = f"http://127.0.0.1:{closed_port()}/events"
    run = _run(termination_log, [down, second.url()], attempts=3)
    assert run.exit_code == 0  # delivery failures are results: the operator dead-letters them
    [failure] = run.result["failures"]
    assert failure["sink"] == 0 and failure["firstFailed"] == 0 and failure["attempts"] == 3
    assert failure["reason"] == "WebhookUnreachable"
    assert "127.0.0.1" not in json.dumps(run.result)  # the URL is not repeated in the result
    assert len(second.received) == 3  # the other sink is not held up by the one that is down


def test_a_sink_that_rejects_a_later_event_fails_from_there(first: Receiver, keys: Path, termination_log: Path) -> None:
    first.answers = [202, 400, 400]
    run = _run(termination_log, [first.url()], attempts=2)
    [failure] = run.result["failures"]
    assert (failure["firstFailed"], failure["attempts"], failure["status"]) == (1, 2, 400)
    assert [r["event"]["id"] for r in first.received] == ["id-1"]  # id-3 is not sent after id-2 failed


def test_a_private_sink_is_refused_by_default(first: Receiver, keys: Path, termination_log: Path) -> None:
    spec = EventsPlan(events=EVENTS, sinks=[first.url()], allow_http=True)
    run = run_main(notify_events.main, [contracts.PLAN_FLAG, spec.model_dump_json(by_alias=True)], termination_log)
    [failure] = run.result["failures"]
    assert failure["reason"] == "WebhookRefused" and failure["attempts"] == 0
    assert first.attempts == 0


def test_a_missing_key_fails_the_batch(first: Receiver, keys: Path, termination_log: Path) -> None:
    (keys / "sink-0").unlink()
    run = _run(termination_log, [first.url()])
    assert run.exit_code == contracts.ExitCode.SPEC_ERROR
    assert run.result["ok"] is False and run.result["reason"] == "MissingEventKey"
    assert first.attempts == 0


def test_the_console_script_runs_it_as_a_pod_would(first: Receiver, keys: Path, termination_log: Path) -> None:
    spec = EventsPlan(events=EVENTS[:1], sinks=[first.url()], allow_http=True, allow_private=True)
    run = run_cli("notify-events", [contracts.PLAN_FLAG, spec.model_dump_json(by_alias=True)], termination_log)
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.termination_message) == {"ok": True, "events": 1, "failures": []}
    assert [r["valid"] for r in first.received] == [True]
    assert KEYS[0].decode() not in run.stderr
