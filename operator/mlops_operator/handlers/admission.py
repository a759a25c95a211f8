"""The approvals admission webhook: kopf serves it, the operator keeps its configuration current.

The mutating handler records who approved, rejected or triggered training from the AdmissionReview's
`userInfo` (the API server's authentication, not the object's content): reconcilers/approvals.py.
The server is kopf's WebhookServer with the certificate from MLOPS_ADMISSION_CERT_DIR (else one it
makes in memory: handlers/webhook_tls.py); each time it
starts (or its certificate files change) the configuration's `webhooks` are patched with its CA and
address (builders/admission.py says which requests reach it, and why it fails closed).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kopf

from mlops_operator import contracts
from mlops_operator.builders import admission as webhook_config
from mlops_operator.handlers import webhook_tls
from mlops_operator.kube import Kube
from mlops_operator.kube import webhooks as kube_webhooks
from mlops_operator.reconcilers import approvals
from mlops_operator.settings import Settings

log = logging.getLogger(__name__)


class InMemoryTLSServer(kopf.WebhookServer):
    """kopf's server with a certificate that exists only in memory (given a context without files, kopf
    would make its own, which needs `certbuilder`)."""

    def __init__(self, context: ssl.SSLContext, ca_pem: bytes, *, port: int) -> None:
        super().__init__(port=port)
        self.preset = (ca_pem, context)

    def _build_ssl(self) -> tuple[bytes | None, ssl.SSLContext | None]:
        return self.preset


class PublishingServer:
    """kopf's WebhookServer, and after each (re)start the configuration patched with its CA."""

    def __init__(self, settings: Settings, kube: Kube) -> None:
        self.settings, self.kube = settings, kube
        if settings.admission_cert_dir:  # mounted (a Secret, cert-manager): kopf reloads it when it changes
            certs = Path(settings.admission_cert_dir)
            ca = certs / "ca.crt"
            self.server = kopf.WebhookServer(
                port=settings.admission_port,
                certfile=certs / "tls.crt",
                pkeyfile=certs / "tls.key",
                cafile=ca if ca.exists() else None,
            )
        else:
            hosts = webhook_tls.hosts_of(settings.admission_service, settings.admission_url)
            self.server = InMemoryTLSServer(*webhook_tls.self_signed(hosts), port=settings.admission_port)

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        async for client in self.server(fn):
            configuration = webhook_config.configuration(self.settings, client.get("caBundle"))
            action = await kube_webhooks.publish(self.kube, configuration)
            name = configuration["metadata"]["name"]
            log.info("approvals webhook on port %s: %s %s", self.settings.admission_port, action, name)
            yield client


def _mapping(body: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if body is None else {k: body[k] for k in body}


def register(handler_registry: kopf.OperatorRegistry) -> None:
    @kopf.on.startup(registry=handler_registry)
    async def serve_admission(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        operator_settings: Settings = memo.get("settings") or Settings.from_env()
        kube = Kube.from_environment(kubeconfig=memo.get("kubeconfig"), timeout=operator_settings.api_timeout_seconds)
        memo["admission_kube"] = kube
        settings.admission.server = PublishingServer(operator_settings, kube)
        settings.admission.managed = None  # ours: kopf's own has no matchConditions and a 30 s timeout

    @kopf.on.cleanup(registry=handler_registry)
    async def close_admission(memo: kopf.Memo, **_: Any) -> None:
        kube: Kube | None = memo.get("admission_kube")
        if kube is not None:
            kube.close()

    @kopf.on.mutate(
        contracts.GROUP,
        contracts.VERSION,
        "models",
        id=webhook_config.HANDLER_ID,
        operations=["CREATE", "UPDATE"],
        registry=handler_registry,
    )
    def record_approvals(userinfo: kopf.UserInfo, patch: kopf.Patch, **kwargs: Any) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        current = _mapping(kwargs.get("new")) or {}
        changes = approvals.admit(
            str(kwargs.get("operation") or ""), userinfo, _mapping(kwargs.get("old")), current, now
        )
        annotations = (current.get("metadata") or {}).get("annotations") or {}
        for key, value in changes.items():
            if annotations.get(key) != value:
                patch.metadata.annotations[key] = value
