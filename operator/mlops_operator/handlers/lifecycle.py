"""Start-up, clean-up, authentication and the liveness probe."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from mlops_operator import contracts
from mlops_operator.handlers import children
from mlops_operator.kube import Kube
from mlops_operator.kube import client as kube_client
from mlops_operator.metrics import Metrics
from mlops_operator.reconcilers.context import ReconcileContext
from mlops_operator.reconcilers.controller import Controller
from mlops_operator.settings import Settings

WATCH_SERVER_TIMEOUT = 300  # an integer: the API server rejects "300.0"
WATCH_CLIENT_TIMEOUT = 330.0
WATCH_CONNECT_TIMEOUT = 30.0


def configure(settings: kopf.OperatorSettings) -> None:
    """Chosen once, never changed on a live cluster (new storage makes kopf see every object as new)."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=contracts.KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=contracts.KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = contracts.FINALIZER
    settings.posting.level = logging.WARNING  # our own Events carry the audit trail
    settings.watching.server_timeout = WATCH_SERVER_TIMEOUT
    settings.watching.client_timeout = WATCH_CLIENT_TIMEOUT
    settings.watching.connect_timeout = WATCH_CONNECT_TIMEOUT
    settings.peering.standalone = True
    settings.peering.clusterwide = False
    children.select_server_side(settings)


def register(handler_registry: kopf.OperatorRegistry) -> None:
    @kopf.on.login(registry=handler_registry)
    def login(memo: kopf.Memo, **kwargs: Any) -> kopf.ConnectionInfo | None:
        return kube_client.login(memo.get("kubeconfig"), **kwargs)

    @kopf.on.startup(registry=handler_registry)
    async def startup(
        settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger | logging.LoggerAdapter[Any], **_: Any
    ) -> None:
        configure(settings)
        operator_settings: Settings = memo.get("settings") or Settings.from_env()
        metrics: Metrics = memo.get("metrics") or Metrics()
        kube = Kube.from_environment(kubeconfig=memo.get("kubeconfig"), timeout=operator_settings.api_timeout_seconds)
        controller = Controller(ReconcileContext(settings=operator_settings, kube=kube, metrics=metrics))
        controller.start()
        memo["controller"] = controller
        scope = ", ".join(operator_settings.namespaces) or "all namespaces"
        logger.info("mlops-operator started: watching %s", scope)

    @kopf.on.cleanup(registry=handler_registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        controller: Controller | None = memo.get("controller")
        if controller is not None:
            await controller.stop()

    @kopf.on.probe(id="watches", registry=handler_registry)
    def watches_alive(memo: kopf.Memo, **_: Any) -> dict[str, float | None]:
        controller: Controller = memo["controller"]
        return controller.health()
