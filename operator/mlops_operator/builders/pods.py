"""Pod fragments every workload shares: restricted security, the store volume, env, resources."""

from __future__ import annotations

from typing import Any

from mlops_operator import contracts
from mlops_operator.api.base import Resources
from mlops_operator.settings import Settings

RUN_AS_USER = 10001
TMP_PATH = "/tmp"
TMP_SIZE_LIMIT = "512Mi"
STORE_VOLUME = "store"
TMP_VOLUME = "tmp"


def pod_security_context() -> dict[str, Any]:
    """Pod Security Standards "restricted", with a numeric non-root user (a name cannot be verified)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(spec: Resources) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section, values in (("requests", spec.requests), ("limits", spec.limits)):
        rendered = {k: v for k, v in (("cpu", values.cpu), ("memory", values.memory)) if v}
        if rendered:
            out[section] = rendered
    return out


def uses_store_volume(settings: Settings) -> bool:
    return bool(settings.store_claim) and settings.store_uri.startswith("file://")


def volumes(settings: Settings, *, read_only_store: bool = False) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"name": TMP_VOLUME, "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}}]
    if uses_store_volume(settings):
        out.append(
            {
                "name": STORE_VOLUME,
                "persistentVolumeClaim": {"claimName": settings.store_claim, "readOnly": read_only_store},
            }
        )
    return out


def volume_mounts(settings: Settings, *, read_only_store: bool = False) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"name": TMP_VOLUME, "mountPath": TMP_PATH}]
    if uses_store_volume(settings):
        out.append({"name": STORE_VOLUME, "mountPath": contracts.STORE_MOUNT_PATH, "readOnly": read_only_store})
    return out


def env(settings: Settings) -> list[dict[str, Any]]:
    """Writable places for libraries that insist on a home or cache directory (the root FS is read-only)."""
    pairs = [
        (contracts.ENV_STORE_URI, settings.store_uri),
        (contracts.ENV_IMAGE, settings.image),
        ("HOME", TMP_PATH),
        ("MPLCONFIGDIR", f"{TMP_PATH}/matplotlib"),
        ("JOBLIB_TEMP_FOLDER", TMP_PATH),
        ("PYTHONDONTWRITEBYTECODE", "1"),
        *settings.extra_env,
    ]
    return [{"name": k, "value": v} for k, v in pairs]


def identity_labels(settings: Settings) -> dict[str, str]:
    """AKS workload identity: the webhook injects the federated token only into labelled pods."""
    return {contracts.LABEL_WORKLOAD_IDENTITY: "true"} if settings.azure_client_id else {}


def workload_container(
    name: str,
    args: list[str],
    settings: Settings,
    spec_resources: Resources,
    *,
    image: str | None = None,
    command: list[str] | None = None,
    read_only_store: bool = False,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": image or settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": command or ["mlops-operator"],
        "args": args,
        "env": env(settings),
        "resources": resources(spec_resources),
        "securityContext": container_security_context(),
        "volumeMounts": volume_mounts(settings, read_only_store=read_only_store),
        "terminationMessagePath": contracts.DEFAULT_TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if settings.store_secret:  # object-store credentials reach the pod through the kubelet only
        container["envFrom"] = [{"secretRef": {"name": settings.store_secret}}]
    return container


def pod_spec(
    containers: list[dict[str, Any]],
    settings: Settings,
    *,
    service_account: str,
    restart_policy: str | None = None,
    read_only_store: bool = False,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "containers": containers,
        "volumes": volumes(settings, read_only_store=read_only_store),
        "enableServiceLinks": False,
    }
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    return spec
