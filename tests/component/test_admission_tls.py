"""The approvals webhook's server with the certificate the operator makes in memory: a real HTTPS
AdmissionReview round trip, verified against the CA it puts in the configuration's caBundle."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
from typing import Any

import aiohttp

from mlops_operator.handlers.admission import InMemoryTLSServer
from mlops_operator.handlers.webhook_tls import self_signed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _round_trip() -> tuple[dict[str, Any], dict[str, Any], str]:
    port = _free_port()
    server = InMemoryTLSServer(*self_signed(["127.0.0.1"]), port=port)

    async def review(request: Any, **_: Any) -> Any:
        return {"response": {"uid": request["request"]["uid"], "allowed": True}}

    configs = server(review)
    client_config: dict[str, Any] = dict(await configs.__anext__())
    trust = ssl.create_default_context(cadata=base64.b64decode(client_config["caBundle"]).decode())
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u-1"}}
    try:
        async with aiohttp.ClientSession() as session:
            url = f"https://127.0.0.1:{port}/approvals"
            async with session.post(url, data=json.dumps(body), ssl=trust) as response:
                answer = await response.json()
            try:  # a client that does not trust that CA is refused
                async with session.post(url, data=json.dumps(body), ssl=ssl.create_default_context()):
                    refused = "no"
            except aiohttp.ClientConnectorCertificateError as exc:
                refused = type(exc).__name__
    finally:
        await configs.aclose()
    return client_config, answer, refused


def test_the_in_memory_certificate_serves_https_that_its_ca_verifies() -> None:
    client_config, answer, refused = asyncio.run(_round_trip())
    assert answer == {"response": {"uid": "u-1", "allowed": True}}
    assert refused == "ClientConnectorCertificateError"
    assert base64.b64decode(client_config["caBundle"]).startswith(b"-----BEGIN CERTIFICATE-----")


async def _handshake(hosts: list[str], server_hostname: str) -> list[str]:
    """A TLS handshake with the in-memory certificate for `hosts`, verifying `server_hostname`."""
    port = _free_port()
    server = InMemoryTLSServer(*self_signed(hosts), port=port)

    async def review(request: Any, **_: Any) -> Any:
        return {}

    configs = server(review)
    client_config: dict[str, Any] = dict(await configs.__anext__())
    trust = ssl.create_default_context(cadata=base64.b64decode(client_config["caBundle"]).decode())
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=trust, server_hostname=server_hostname)
        peer = writer.get_extra_info("peercert")
        writer.close()
        await writer.wait_closed()
    finally:
        await configs.aclose()
    return [str(value) for kind, value in peer["subjectAltName"] if kind == "DNS"]


def test_a_service_name_longer_than_a_common_name_gets_a_certificate() -> None:
    # <release>-webhook.<namespace>.svc passes 64 characters (the CN's limit) with ordinary names
    host = "mlops-operator-plugin-5744c3-webhook.e2e-plugin-system-5744c3.svc"
    assert len(host) > 64
    assert asyncio.run(_handshake([host, "127.0.0.1"], server_hostname=host)) == [host]
