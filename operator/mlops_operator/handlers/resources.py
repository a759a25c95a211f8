"""The custom resources (PLURALS): every watch event goes to the controller, which
keeps the object in kube's watch cache and reconciles it when what it asks for changed
(`Controller.changed`: created, listed at start, spec, labels or annotations changed, deleting).

No kopf create/update/resume handlers: those made kopf PATCH its last-handled-configuration
annotation onto the object after every change (a request per change, and a watch event back).
"""

from __future__ import annotations

from typing import Any

import kopf

from mlops_operator import contracts
from mlops_operator.handlers.children import register_index
from mlops_operator.reconcilers.context import Key
from mlops_operator.reconcilers.controller import Controller

PLURALS = {
    "Dataset": "datasets",
    "Model": "models",
    "DriftMonitor": "driftmonitors",
    "BatchScoring": "batchscorings",
}


def register(handler_registry: kopf.OperatorRegistry) -> None:
    for kind, plural in PLURALS.items():
        _register_kind(handler_registry, kind, plural)


def _register_kind(handler_registry: kopf.OperatorRegistry, kind: str, plural: str) -> None:
    resource = (contracts.GROUP, contracts.VERSION, plural)

    @kopf.on.event(*resource, id=f"{plural}-events", registry=handler_registry)
    async def event(name: str, namespace: str | None, type: str | None, body: kopf.Body, memo: Any, **_: Any) -> None:
        controller: Controller = memo["controller"]
        controller.resource_event(Key(kind, namespace or "", name), type, body)

    register_index(handler_registry, *resource, None)
