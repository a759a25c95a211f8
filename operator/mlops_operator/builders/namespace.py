"""What a workload namespace needs before the first Job: the workload ServiceAccounts and the store claim.

They are shared by every custom resource in the namespace, so they carry no owner reference (and
outlive any one Model: the claim holds the artifacts).
"""

from __future__ import annotations

from typing import Any

from mlops_operator import contracts
from mlops_operator.builders import pods
from mlops_operator.settings import Settings


def _meta(name: str, namespace: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": {contracts.LABEL_MANAGED_BY: contracts.MANAGED_BY, contracts.LABEL_NAME: "mlops-operator"},
    }


def service_accounts(namespace: str, settings: Settings) -> list[dict[str, Any]]:
    """Workload and serving accounts: no API token is ever mounted from them."""
    out = []
    for name in sorted({settings.workload_service_account, settings.serving_service_account}):
        meta = _meta(name, namespace)
        client_id = settings.client_id_for(namespace)
        if client_id:
            meta["annotations"] = {contracts.ANNOTATION_WORKLOAD_IDENTITY_CLIENT_ID: client_id}
        out.append(
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta, "automountServiceAccountToken": False}
        )
    return out


def store_claim(namespace: str, settings: Settings) -> dict[str, Any] | None:
    if not pods.uses_store_volume(settings):
        return None
    spec: dict[str, Any] = {
        "accessModes": list(settings.store_access_modes),
        "resources": {"requests": {"storage": settings.store_size}},
    }
    if settings.store_storage_class:
        spec["storageClassName"] = settings.store_storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(settings.store_claim, namespace),
        "spec": spec,
    }


def prerequisites(namespace: str, settings: Settings) -> list[dict[str, Any]]:
    claim = store_claim(namespace, settings)
    return [*service_accounts(namespace, settings), *([claim] if claim else [])]
