"""Operator settings, read once from `MLOPS_*` environment variables at start-up.

A frozen value passed down explicitly (kopf memo → reconcilers → builders), never a global, so a
test builds the exact settings it needs with `Settings(...)`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from mlops_operator import contracts

DEFAULT_IMAGE = "localhost/mlops-operator:dev"


@dataclass(frozen=True)
class Settings:
    image: str = DEFAULT_IMAGE
    image_pull_policy: str = "IfNotPresent"
    store_uri: str = contracts.DEFAULT_STORE_URI
    # PVC mounted at contracts.STORE_MOUNT_PATH in every workload pod; "" for object stores (az://, s3://).
    store_claim: str = "mlops-artifacts"
    # The claim the operator creates in a workload namespace that lacks it ("" class: the default).
    store_storage_class: str = ""
    store_size: str = "10Gi"
    store_access_modes: tuple[str, ...] = ("ReadWriteOnce",)
    # Secret with object-store credentials, handed to workload pods by envFrom (never read here).
    store_secret: str = ""
    # AKS workload identity: ServiceAccounts get the client-id annotation, pods the "use" label.
    azure_client_id: str = ""
    workload_service_account: str = "mlops-workload"
    serving_service_account: str = "mlops-workload"
    namespaces: tuple[str, ...] = ()  # empty: every namespace (cluster-wide)
    job_ttl_seconds: int = 3600
    profile_deadline_seconds: int = 1800
    drift_deadline_seconds: int = 1800
    resync_seconds: float = 60.0
    metrics_port: int = 9090
    liveness_port: int = 8081
    api_timeout_seconds: float = 30.0
    # The notify Job posts only over https to a public address unless these allow more (a receiver
    # inside the cluster or on a private network).
    webhook_allow_http: bool = False
    webhook_allow_private: bool = False
    extra_env: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, prefix: str = "MLOPS_") -> Settings:
        env = os.environ if env is None else env

        def get(name: str, default: str) -> str:
            return env.get(prefix + name, default)

        def enabled(name: str) -> bool:
            return get(name, "false").strip().lower() in {"1", "true", "yes"}

        namespaces = tuple(ns.strip() for ns in get("NAMESPACES", "").split(",") if ns.strip())
        return cls(
            image=get("IMAGE", DEFAULT_IMAGE),
            image_pull_policy=get("IMAGE_PULL_POLICY", "IfNotPresent"),
            store_uri=get("STORE_URI", contracts.DEFAULT_STORE_URI),
            store_claim=get("STORE_CLAIM", "mlops-artifacts"),
            store_storage_class=get("STORE_STORAGE_CLASS", ""),
            store_size=get("STORE_SIZE", "10Gi"),
            store_access_modes=tuple(
                m.strip() for m in get("STORE_ACCESS_MODES", "ReadWriteOnce").split(",") if m.strip()
            ),
            store_secret=get("STORE_SECRET", ""),
            azure_client_id=get("AZURE_CLIENT_ID", ""),
            workload_service_account=get("WORKLOAD_SERVICE_ACCOUNT", "mlops-workload"),
            serving_service_account=get("SERVING_SERVICE_ACCOUNT", "mlops-workload"),
            namespaces=namespaces,
            job_ttl_seconds=int(get("JOB_TTL_SECONDS", "3600")),
            profile_deadline_seconds=int(get("PROFILE_DEADLINE_SECONDS", "1800")),
            drift_deadline_seconds=int(get("DRIFT_DEADLINE_SECONDS", "1800")),
            resync_seconds=float(get("RESYNC_SECONDS", "60")),
            metrics_port=int(get("METRICS_PORT", "9090")),
            liveness_port=int(get("LIVENESS_PORT", "8081")),
            api_timeout_seconds=float(get("API_TIMEOUT_SECONDS", "30")),
            webhook_allow_http=enabled("WEBHOOK_ALLOW_HTTP"),
            webhook_allow_private=enabled("WEBHOOK_ALLOW_PRIVATE"),
        )
