"""Events of owned Jobs, Deployments and serving Pods wake their parent at once (no polling); every
one of them keeps kube.cache up to date (the reconcilers read them there); events
of the owned ServiceAccounts, claims, Services, HPAs and PDBs only keep kube.presence up to date.

The operator's reach: these watches select server side. kopf's `labels=` filter on a handler is
applied in the operator, after the API server has sent every Job, Deployment and Pod of the watched
namespaces (of the whole cluster, without MLOPS_NAMESPACES): memory, bandwidth and a read of every
tenant's Pods. `select_server_side` puts the same labels into kopf's
`settings.watching.label_selectors` (kopf >= the pinned 1.45.2 sends them as `labelSelector` on
both the initial list and the watch), so the API server sends only our children; the handler's
`labels=` stays as a second check.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from mlops_operator import contracts
from mlops_operator.reconcilers.controller import Controller

log = logging.getLogger(__name__)
MANAGED = {contracts.LABEL_MANAGED_BY: contracts.MANAGED_BY}
SERVING_PODS = {**MANAGED, contracts.LABEL_COMPONENT: str(contracts.Component.SERVE)}


# Owned objects whose existence the operator caches (kube.presence) instead of asking each reconcile.
PRESENCE: tuple[tuple[str, str, str], ...] = (
    ("", "v1", "serviceaccounts"),
    ("", "v1", "persistentvolumeclaims"),
    ("", "v1", "services"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("policy", "v1", "poddisruptionbudgets"),
)

# Owned objects kept whole (their essentials) in kube.cache, read there instead of asked for.
CACHED: dict[tuple[str, str, str], dict[str, str]] = {
    ("batch", "v1", "jobs"): MANAGED,
    ("apps", "v1", "deployments"): MANAGED,
    ("", "v1", "pods"): SERVING_PODS,
}

# (group, version, plural) → the labels every object the operator wants from that watch carries
WATCHED: dict[tuple[str, str, str], dict[str, str]] = {
    ("batch", "v1", "jobs"): MANAGED,
    ("apps", "v1", "deployments"): MANAGED,
    ("", "v1", "pods"): SERVING_PODS,
    **dict.fromkeys(PRESENCE, MANAGED),
}


def label_selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def select_server_side(settings: kopf.OperatorSettings) -> bool:
    """Watch every kind in WATCHED with a server-side label selector (see the module's docstring).

    False (and a warning) with a kopf older than the setting: the handlers' client-side filter
    then works alone, as before.
    """
    selectors = getattr(settings.watching, "label_selectors", None)
    if selectors is None:
        log.warning(
            "kopf %s has no settings.watching.label_selectors: Jobs, Deployments and Pods are filtered "
            "in the operator, after the API server sent them all; use kopf >= 1.45.2",
            getattr(kopf, "__version__", "?"),
        )
        return False
    for (group, version, plural), labels in WATCHED.items():
        key = (version, plural) if not group else (group, version, plural)
        selectors[key] = label_selector(labels)
    return True


def register(handler_registry: kopf.OperatorRegistry) -> None:
    @kopf.on.event("batch", "v1", "jobs", labels=MANAGED, id="jobs", registry=handler_registry)
    @kopf.on.event("apps", "v1", "deployments", labels=MANAGED, id="deployments", registry=handler_registry)
    @kopf.on.event(
        group="", version="v1", plural="pods", labels=SERVING_PODS, id="serving-pods", registry=handler_registry
    )
    async def child_changed(
        namespace: str | None, labels: Mapping[str, str], type: str | None, body: kopf.Body, memo: Any, **_: Any
    ) -> None:
        controller: Controller = memo["controller"]
        controller.child_changed(namespace or "", dict(labels), type, body)

    for group, version, plural in PRESENCE:
        _register_presence(handler_registry, group, version, plural)
    for group, version, plural in (*CACHED, *PRESENCE):
        register_index(handler_registry, group, version, plural, WATCHED[group, version, plural])


def register_index(
    handler_registry: kopf.OperatorRegistry, group: str, version: str, plural: str, labels: dict[str, str] | None
) -> None:
    """Put every object the watch lists or changes into kube's caches (kube/cache.py, kube/presence.py).
    An index handler also makes kopf hold every other handler until all indexed watches have listed."""

    @kopf.index(group, version, plural, labels=labels, id=f"cache-{plural}", registry=handler_registry)
    def cached(body: kopf.Body, memo: Any, **_: Any) -> None:
        controller: Controller = memo["controller"]
        controller.indexed(body)


def _register_presence(handler_registry: kopf.OperatorRegistry, group: str, version: str, plural: str) -> None:
    @kopf.on.event(group, version, plural, labels=MANAGED, id=f"presence-{plural}", registry=handler_registry)
    async def owned_changed(type: str | None, body: kopf.Body, memo: Any, **_: Any) -> None:
        controller: Controller = memo["controller"]
        controller.owned_changed(type, body)
