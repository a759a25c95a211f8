"""Events of owned Jobs, Deployments and serving Pods wake their parent at once (no polling)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from mlops_operator import contracts
from mlops_operator.reconcilers.controller import Controller

MANAGED = {contracts.LABEL_MANAGED_BY: contracts.MANAGED_BY}
SERVING_PODS = {**MANAGED, contracts.LABEL_COMPONENT: str(contracts.Component.SERVE)}


def register(handler_registry: kopf.OperatorRegistry) -> None:
    @kopf.on.event("batch", "v1", "jobs", labels=MANAGED, id="jobs", registry=handler_registry)
    @kopf.on.event("apps", "v1", "deployments", labels=MANAGED, id="deployments", registry=handler_registry)
    @kopf.on.event(
        group="", version="v1", plural="pods", labels=SERVING_PODS, id="serving-pods", registry=handler_registry
    )
    async def child_changed(namespace: str | None, labels: Mapping[str, str], memo: Any, **_: Any) -> None:
        controller: Controller = memo["controller"]
        controller.child_changed(namespace or "", dict(labels))
