"""Dataset, Model and DriftMonitor: create/update/resume all mean "reconcile this object now"."""

from __future__ import annotations

from typing import Any

import kopf

from mlops_operator import contracts
from mlops_operator.reconcilers.context import Key
from mlops_operator.reconcilers.controller import Controller

PLURALS = {"Dataset": "datasets", "Model": "models", "DriftMonitor": "driftmonitors"}


def register(handler_registry: kopf.OperatorRegistry) -> None:
    for kind, plural in PLURALS.items():
        _register_kind(handler_registry, kind, plural)


def _register_kind(handler_registry: kopf.OperatorRegistry, kind: str, plural: str) -> None:
    resource = (contracts.GROUP, contracts.VERSION, plural)
    @kopf.on.resume(*resource, id=f"{plural}-resume", registry=handler_registry)
    @kopf.on.create(*resource, id=f"{plural}-create", registry=handler_registry)
    @kopf.on.update(*resource, id=f"{plural}-update", registry=handler_registry)
    async def changed(name: str, namespace: str | None, memo: Any, **_: Any) -> None:
        controller: Controller = memo["controller"]
        await controller.reconcile(Key(kind, namespace or "", name))

    @kopf.on.event(*resource, id=f"{plural}-deleted", registry=handler_registry)
    async def deleted(name: str, namespace: str | None, type: str, memo: Any, **_: Any) -> None:
        if type == "DELETED":
            controller: Controller = memo["controller"]
            controller.deleted(Key(kind, namespace or "", name))
