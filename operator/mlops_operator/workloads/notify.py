"""`mlops-operator notify`: post one notification (a DriftMonitor's drift verdict) to a webhook.

    MLOPS_WEBHOOK_URL=https://hooks.example/... mlops-operator notify --spec '<NotifyPlan JSON>'

The URL comes from the environment (a secretKeyRef in the Job: the operator never reads the Secret).
It is a secret, so no log line, message or result ever carries it, nor any part of it.

The request is a single POST of the plan's payload as JSON:
- over https (TLS verified against the host name) unless the plan allows http;
- the host is resolved once and every address it resolves to is checked: a private, loopback,
  link-local or otherwise non-public address refuses the request unless the plan allows private
  destinations; the connection then goes to one of the checked addresses, so a second DNS answer
  cannot swap in another one;
- redirects are not followed: a 3xx answer is a failure;
- every connect, send and receive times out after the plan's timeout_seconds (the Job's
  activeDeadlineSeconds bounds the whole run).

A refused URL exits with SPEC_ERROR (retrying cannot help); a webhook that cannot be reached or does
not answer 2xx exits with DELIVERY_ERROR, and the Job retries within its backoffLimit.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import os
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol
from urllib.parse import urlsplit

import mlops_operator
from mlops_operator import contracts
from mlops_operator.api.plans import NotifyPlan
from mlops_operator.api.results import NotifyResult
from mlops_operator.workloads import common

log = logging.getLogger(__name__)

DEFAULT_PORTS: Final = {"https": 443, "http": 80}
RESPONSE_READ_MAX: Final = 64 * 1024
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DeliveryError(common.WorkloadError):
    """The webhook could not be reached or did not take the notification; a retry may help."""

    def __init__(self, reason: str, message: str, status: int | None = None) -> None:
        super().__init__(contracts.ExitCode.DELIVERY_ERROR, reason, message)
        self.status = status


class DestinationPolicy(Protocol):
    """What a plan allows beyond https to a public address (NotifyPlan, EventsPlan)."""

    @property
    def allow_http(self) -> bool: ...

    @property
    def allow_private(self) -> bool: ...


@dataclass(frozen=True)
class Destination:
    """Where the POST goes: the URL split up, and the checked addresses its host resolved to."""

    https: bool
    host: str
    port: int
    target: str  # path and query
    addresses: tuple[str, ...]


def main(argv: Sequence[str]) -> int:
    args = common.plan_parser("notify", __doc__, NotifyPlan).parse_args(list(argv))
    return common.run_plan("notify", args, NotifyPlan, notify, failed_result)


def failed_result(error: common.WorkloadError) -> NotifyResult:
    status = error.status if isinstance(error, DeliveryError) else None
    return NotifyResult(ok=False, status=status, reason=error.reason, error=error.message)


def notify(plan: NotifyPlan) -> NotifyResult:
    destination = destination_of(webhook_url(), plan)
    body = json.dumps(plan.payload, sort_keys=True).encode()
    status = post(destination, body, plan.timeout_seconds)
    log.info("the webhook answered %d", status)
    return NotifyResult(ok=True, status=status)


def webhook_url() -> str:
    url = os.environ.get(contracts.ENV_WEBHOOK_URL, "").strip()
    if not url:
        raise common.SpecError("MissingWebhookUrl", f"${contracts.ENV_WEBHOOK_URL} is empty or not set")
    return url


def destination_of(url: str, plan: DestinationPolicy) -> Destination:
    """Check the URL and the addresses of its host; the errors never quote the URL."""
    if any(c.isspace() or not c.isprintable() for c in url):  # http.client would quote it in its error
        raise common.SpecError("InvalidWebhookUrl", "the webhook URL holds whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise common.SpecError("InvalidWebhookUrl", "the webhook URL cannot be parsed") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise common.SpecError("InvalidWebhookUrl", "the webhook URL is neither https nor http")
    if scheme == "http" and not plan.allow_http:
        raise common.SpecError(
            "WebhookRefused",
            "the webhook URL is plain http; only https is allowed (operator setting WEBHOOK_ALLOW_HTTP)",
        )
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise common.SpecError("InvalidWebhookUrl", "the webhook URL needs a host and takes no credentials")
    port = port or DEFAULT_PORTS[scheme]
    addresses = resolve(parts.hostname, port)
    if not plan.allow_private:
        for address in addresses:
            kind = non_public_kind(ipaddress.ip_address(address))
            if kind:
                raise common.SpecError(
                    "WebhookRefused",
                    f"the webhook host resolves to {address}, a {kind} address; refused unless private "
                    "destinations are allowed (operator setting WEBHOOK_ALLOW_PRIVATE)",
                )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(scheme == "https", parts.hostname, port, target, addresses)


def resolve(host: str, port: int) -> tuple[str, ...]:
    """Every address of `host`, in the resolver's order, without duplicates or IPv6 scope ids."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DeliveryError("WebhookUnreachable", f"the webhook host does not resolve ({_describe(exc)})") from None
    addresses = (str(info[4][0]).split("%", 1)[0] for info in infos)
    return tuple(dict.fromkeys(addresses))


def non_public_kind(address: IPAddress) -> str | None:
    """What makes `address` no place to send a notification to by default; None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("private", address.is_private),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
    )
    kind = next((name for name, hit in checks if hit), None)
    return kind or (None if address.is_global else "non-public")


def post(destination: Destination, body: bytes, timeout: float, extra_headers: dict[str, str] | None = None) -> int:
    """POST `body` to the destination over a connection to one of its checked addresses."""
    connection = _connect(destination, timeout)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"mlops-operator/{mlops_operator.__version__}",
        **(extra_headers or {}),
    }
    try:
        connection.request("POST", destination.target, body=body, headers=headers)
        response = connection.getresponse()
        response.read(RESPONSE_READ_MAX)
    except TimeoutError:
        raise DeliveryError("WebhookTimeout", f"the webhook did not answer within {timeout:g} s") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:  # ValueError: http.client's checks
        raise DeliveryError("WebhookUnreachable", f"the webhook request failed ({_describe(exc)})") from None
    finally:
        connection.close()
    status = response.status
    if 300 <= status < 400:
        raise DeliveryError("WebhookRedirected", f"the webhook answered {status}; redirects are not followed", status)
    if not 200 <= status < 300:
        raise DeliveryError("WebhookRejected", f"the webhook answered {status}", status)
    return status


def _connect(destination: Destination, timeout: float) -> http.client.HTTPConnection:
    """An HTTP(S) connection to the first checked address that accepts one (never a fresh lookup)."""
    failure: OSError | None = None
    for address in destination.addresses:
        try:
            sock = socket.create_connection((address, destination.port), timeout=timeout)
        except OSError as exc:
            failure = exc
            continue
        if not destination.https:
            connection = http.client.HTTPConnection(destination.host, destination.port, timeout=timeout)
            connection.sock = sock
            return connection
        context = ssl.create_default_context()
        try:
            tls = context.wrap_socket(sock, server_hostname=destination.host)
        except OSError as exc:  # ssl.SSLError and timeouts alike: the host is not one we can trust
            sock.close()
            raise DeliveryError("WebhookUnreachable", f"TLS with the webhook failed ({_describe(exc)})") from None
        connection = http.client.HTTPSConnection(destination.host, destination.port, timeout=timeout, context=context)
        connection.sock = tls
        return connection
    if isinstance(failure, TimeoutError):
        raise DeliveryError("WebhookTimeout", f"no connection to the webhook within {timeout:g} s")
    raise DeliveryError("WebhookUnreachable", f"cannot connect to the webhook ({_describe(failure)})")


def _describe(exc: BaseException | None) -> str:
    """A cause without the URL or host: TLS verification messages name the host, so only the reason."""
    if exc is None:
        return "no address"
    if isinstance(exc, ssl.SSLError):
        return f"{type(exc).__name__}: {exc.reason}" if exc.reason else type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__


__all__ = [
    "DeliveryError",
    "Destination",
    "DestinationPolicy",
    "destination_of",
    "main",
    "non_public_kind",
    "notify",
    "post",
]
