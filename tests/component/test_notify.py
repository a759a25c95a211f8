"""The notify workload against a real HTTP(S) receiver on 127.0.0.1.

Loopback is a private destination and the receivers speak plain http unless a test sets up TLS, so
each test opts in with allowHttp / allowPrivate exactly where it needs them: the defaults refuse.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlops_operator import contracts
from mlops_operator.api.plans import NotifyPlan
from mlops_operator.workloads import notify

from .conftest import Run, run_cli, run_main

ExitCode = contracts.ExitCode
SECRET = "T0KEN-s3cr3t"  # stands for the part of a webhook URL that must never be logged
PAYLOAD = {"text": "Drift detected by DriftMonitor team-a/iris-drift", "verdict": "Drift"}


@dataclass
class Receiver:
    """A webhook on 127.0.0.1 that records every request and answers as told."""

    port: int
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)

    def url(self, scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}/hooks/{SECRET}?token={SECRET}"


def _serve(tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    receiver = Receiver(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            time.sleep(receiver.delay)
            self.send_response(receiver.status)
            for name, value in receiver.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _serve()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for hooks.test and 127.0.0.1 (it is its own CA)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=hooks.test",
         "-addext", "subjectAltName=DNS:hooks.test,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_receiver(certificate: tuple[Path, Path]) -> Iterator[Receiver]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    yield from _serve(context)


def _run(url: str | None, monkeypatch: pytest.MonkeyPatch, termination_log: Path, **plan: Any) -> Run:
    if url is None:
        monkeypatch.delenv(contracts.ENV_WEBHOOK_URL, raising=False)
    else:
        monkeypatch.setenv(contracts.ENV_WEBHOOK_URL, url)
    spec = NotifyPlan(payload=PAYLOAD, **plan).model_dump_json(by_alias=True)
    return run_main(notify.main, [contracts.PLAN_FLAG, spec], termination_log)


def _assert_secret_kept(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    captured = capsys.readouterr()
    for text in (captured.out, captured.err, run.stderr, run.termination_message.decode(), json.dumps(run.result)):
        assert SECRET not in text and "127.0.0.1:" not in text and "hooks.test" not in text


def _resolve_to(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> list[str]:
    """Make every lookup answer `addresses`; returns the hosts looked up."""
    looked_up: list[str] = []

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        looked_up.append(host)
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [
            (family[ipaddress.ip_address(a).version], socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


# --- delivery ------------------------------------------------------------------------------------
def test_posts_the_payload_as_json(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch, termination_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run(receiver.url(), monkeypatch, termination_log, allow_http=True, allow_private=True)
    assert (run.exit_code, run.result) == (ExitCode.OK, {"ok": True, "status": 200})
    (request,) = receiver.requests
    assert request["path"] == f"/hooks/{SECRET}?token={SECRET}"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == PAYLOAD
    _assert_secret_kept(run, capsys)


def test_through_the_console_script(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch, termination_log: Path
) -> None:
    monkeypatch.setenv(contracts.ENV_WEBHOOK_URL, receiver.url())
    spec = NotifyPlan(payload=PAYLOAD, allow_http=True, allow_private=True).model_dump_json(by_alias=True)
    run = run_cli("notify", [contracts.PLAN_FLAG, spec], termination_log)
    assert run.exit_code == ExitCode.OK, run.stderr
    assert json.loads(run.termination_message) == run.result == {"ok": True, "status": 200}
    assert len(receiver.requests) == 1 and SECRET not in run.stderr


def test_https_with_a_verified_certificate_goes_to_the_checked_address(
    tls_receiver: Receiver,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    termination_log: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # trust the test's own CA
    looked_up = _resolve_to(monkeypatch, "127.0.0.1")
    run = _run(tls_receiver.url("https", "hooks.test"), monkeypatch, termination_log, allow_private=True)
    assert (run.exit_code, run.result) == (ExitCode.OK, {"ok": True, "status": 200})
    (request,) = tls_receiver.requests
    assert request["headers"]["Host"] == f"hooks.test:{tls_receiver.port}"  # TLS and Host name the host
    # The host is resolved once; the connection is to the checked address (a numeric "lookup" of it).
    assert looked_up == ["hooks.test", "127.0.0.1"]
    _assert_secret_kept(run, capsys)


def test_an_untrusted_certificate_fails_without_naming_the_host(
    tls_receiver: Receiver, monkeypatch: pytest.MonkeyPatch, termination_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _resolve_to(monkeypatch, "127.0.0.1")
    run = _run(tls_receiver.url("https", "hooks.test"), monkeypatch, termination_log, allow_private=True)
    assert (run.exit_code, run.result["reason"]) == (ExitCode.DELIVERY_ERROR, "WebhookUnreachable")
    assert "CERTIFICATE_VERIFY_FAILED" in run.result["error"] and not tls_receiver.requests
    _assert_secret_kept(run, capsys)


# --- refusals: nothing is sent ---------------------------------------------------------------------
def test_plain_http_needs_allow_http(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch, termination_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run(receiver.url(), monkeypatch, termination_log, allow_private=True)
    assert (run.exit_code, run.result["reason"]) == (ExitCode.SPEC_ERROR, "WebhookRefused")
    assert "only https" in run.result["error"] and not receiver.requests
    _assert_secret_kept(run, capsys)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_needs_allow_private(
    host: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    termination_log: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = _run(receiver.url("http", host), monkeypatch, termination_log, allow_http=True)
    assert (run.exit_code, run.result["reason"]) == (ExitCode.SPEC_ERROR, "WebhookRefused")
    assert "loopback address" in run.result["error"] and not receiver.requests


def test_every_address_of_the_host_is_checked(
    monkeypatch: pytest.MonkeyPatch, termination_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _resolve_to(monkeypatch, "93.184.216.34", "10.1.2.3")  # one public, one private: refused

    def no_connection(*args: Any, **kwargs: Any) -> socket.socket:
        raise AssertionError("a refused destination must not be connected to")

    monkeypatch.setattr(socket, "create_connection", no_connection)
    run = _run(f"https://hooks.test/{SECRET}", monkeypatch, termination_log)
    assert (run.exit_code, run.result["reason"]) == (ExitCode.SPEC_ERROR, "WebhookRefused")
    assert "10.1.2.3, a private address" in run.result["error"]
    _assert_secret_kept(run, capsys)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),  # cloud metadata endpoints
        ("fe80::1", "link-local"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped IPv6
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_what_counts_as_a_private_destination(address: str, kind: str | None) -> None:
    assert notify.non_public_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    "url",
    [
        f"ftp://hooks.test/{SECRET}",
        f"https://user:{SECRET}@hooks.test/x",
        f"https://hooks.test:99999/{SECRET}",
        f"https:///{SECRET}",
        f"https://hooks.test/a b/{SECRET}",
        f"https://hooks.test/\x1b{SECRET}",
        SECRET,
    ],
)
def test_malformed_urls_are_refused_without_quoting_them(
    url: str, monkeypatch: pytest.MonkeyPatch, termination_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run(url, monkeypatch, termination_log, allow_http=True, allow_private=True)
    assert (run.exit_code, run.result["reason"]) == (ExitCode.SPEC_ERROR, "InvalidWebhookUrl")
    _assert_secret_kept(run, capsys)


def test_a_missing_url_is_a_spec_error(monkeypatch: pytest.MonkeyPatch, termination_log: Path) -> None:
    run = _run(None, monkeypatch, termination_log)
    assert (run.exit_code, run.result["reason"]) == (ExitCode.SPEC_ERROR, "MissingWebhookUrl")


# --- failures a retry may fix ------------------------------------------------------------------------
def test_redirects_are_not_followed(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch, termination_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver.status, receiver.headers = 307, {"Location": f"http://127.0.0.1:{receiver.port}/elsewhere"}
    run = _run(receiver.url(), monkeypatch, termination_log, allow_http=True, allow_private=True)
    assert (run.exit_code, run.result["reason"], run.result["status"]) == (
        ExitCode.DELIVERY_ERROR, "WebhookRedirected", 307
    )
    assert len(receiver.requests) == 1  # the Location was not visited
    _assert_secret_kept(run, capsys)


@pytest.mark.parametrize("status", [404, 500])
def test_an_error_answer_fails_the_run(
    status: int, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, termination_log: Path
) -> None:
    receiver.status = status
    run = _run(receiver.url(), monkeypatch, termination_log, allow_http=True, allow_private=True)
    assert (run.exit_code, run.result) == (
        ExitCode.DELIVERY_ERROR,
        {"ok": False, "status": status, "reason": "WebhookRejected", "error": f"the webhook answered {status}"},
    )


def test_a_slow_webhook_times_out(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch, termination_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver.delay = 3.0
    started = time.monotonic()
    run = _run(receiver.url(), monkeypatch, termination_log, allow_http=True, allow_private=True, timeout_seconds=0.3)
    assert (run.exit_code, run.result["reason"]) == (ExitCode.DELIVERY_ERROR, "WebhookTimeout")
    assert time.monotonic() - started < 2.0
    _assert_secret_kept(run, capsys)


def test_nothing_listening(
    monkeypatch: pytest.MonkeyPatch, termination_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{SECRET}"
    run = _run(url, monkeypatch, termination_log, allow_http=True, allow_private=True)
    assert (run.exit_code, run.result["reason"]) == (ExitCode.DELIVERY_ERROR, "WebhookUnreachable")
    assert "ConnectionRefusedError" in run.result["error"]
    _assert_secret_kept(run, capsys)

