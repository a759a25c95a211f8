"""Pod fragments every workload shares: restricted security, the store volume, env, resources,
placement (node selector, tolerations, affinity, priority class, image pull secrets).

A container that touches the store (profile, train, serve, drift, registry) gets the store's URI, its
non-secret settings as env values (Settings.store_env), the store Secret by reference (envFrom, read
by the kubelet, never by the operator) and, for a `file://` store, the claim. One that does not
(notify) gets none of them.
"""

from __future__ import annotations

from typing import Any

from mlops_operator import contracts
from mlops_operator.api.base import Resources
from mlops_operator.api.v1alpha1.pods import PodOptions
from mlops_operator.builders import limits
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


def resources(spec: Resources, settings: Settings) -> dict[str, Any]:
    """The spec's requests, and limits: cpu and memory always, and every extended resource requested
    (limits.container_limits)."""
    out: dict[str, Any] = {}
    if spec.requests:
        out["requests"] = dict(spec.requests)
    out["limits"] = limits.container_limits(spec, settings)
    return out


def placement(options: PodOptions | None, settings: Settings) -> dict[str, Any]:
    """imagePullSecrets, nodeSelector, tolerations, affinity and priorityClassName of a pod: each one
    the spec gives (`options`), else the operator's default; empty ones are left out."""
    defaults = settings.pod_defaults.dump()
    given = (
        options.model_dump(by_alias=True, include=set(PodOptions.model_fields), exclude_none=True, mode="json")
        if options
        else {}
    )
    return {key: value for key, value in (defaults | given).items() if value}


def uses_store_volume(settings: Settings) -> bool:
    return bool(settings.store_claim) and settings.store_uri.startswith("file://")


def volumes(settings: Settings, *, read_only_store: bool = False, store: bool = True) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"name": TMP_VOLUME, "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}}]
    if store and uses_store_volume(settings):
        out.append(
            {
                "name": STORE_VOLUME,
                "persistentVolumeClaim": {"claimName": settings.store_claim, "readOnly": read_only_store},
            }
        )
    return out


def volume_mounts(settings: Settings, *, read_only_store: bool = False, store: bool = True) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"name": TMP_VOLUME, "mountPath": TMP_PATH}]
    if store and uses_store_volume(settings):
        out.append({"name": STORE_VOLUME, "mountPath": contracts.STORE_MOUNT_PATH, "readOnly": read_only_store})
    return out


def store_env(settings: Settings) -> list[tuple[str, str]]:
    """What a container that touches the store needs in plain values: its URI and the allowlisted
    non-secret settings (account name, endpoint, region). Credentials: envFrom the store Secret only."""
    return [(contracts.ENV_STORE_URI, settings.store_uri), *settings.store_env.pairs()]


def env(settings: Settings, *, store: bool = True) -> list[dict[str, Any]]:
    """Writable places for libraries that insist on a home or cache directory (the root FS is read-only)."""
    pairs = [
        *(store_env(settings) if store else []),
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
    return {contracts.LABEL_WORKLOAD_IDENTITY: "true"} if settings.azure_client_id or settings.azure_client_ids else {}


def workload_container(
    name: str,
    args: list[str],
    settings: Settings,
    spec_resources: Resources,
    *,
    image: str | None = None,
    command: list[str] | None = None,
    read_only_store: bool = False,
    store: bool = True,
) -> dict[str, Any]:
    """A workload container; `store=False` for one that never touches the store (no store env,
    Secret or claim)."""
    container: dict[str, Any] = {
        "name": name,
        "image": image or settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": command or ["mlops-operator"],
        "args": args,
        "env": env(settings, store=store),
        "resources": resources(spec_resources, settings),
        "securityContext": container_security_context(),
        "volumeMounts": volume_mounts(settings, read_only_store=read_only_store, store=store),
        "terminationMessagePath": contracts.DEFAULT_TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if store and settings.store_secret:  # object-store credentials reach the pod through the kubelet only
        container["envFrom"] = [{"secretRef": {"name": settings.store_secret}}]
    return container


def pod_spec(
    containers: list[dict[str, Any]],
    settings: Settings,
    *,
    service_account: str,
    restart_policy: str | None = None,
    read_only_store: bool = False,
    store: bool = True,
    options: PodOptions | None = None,
) -> dict[str, Any]:
    """A workload pod; `options`: the spec's placement (None: the operator's defaults only)."""
    spec: dict[str, Any] = {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "containers": containers,
        "volumes": volumes(settings, read_only_store=read_only_store, store=store),
        "enableServiceLinks": False,
        **placement(options, settings),
    }
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    return spec
