"""Operator settings, read once from `MLOPS_*` environment variables at start-up.

A frozen value passed down explicitly (kopf memo → reconcilers → builders), never a global, so a
test builds the exact settings it needs with `Settings(...)`.

One group is read under other names: `StoreEnv`, the non-secret settings of an object store, read
from the operator's environment by the names the fsspec backends read (AZURE_STORAGE_ACCOUNT_NAME,
AWS_ENDPOINT_URL, …) and handed on, as values, to every workload pod that touches the store. It is
an explicit allowlist: credentials are never among them; they reach pods only by reference to the
store Secret (`store_secret`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import ValidationError

from mlops_operator import contracts
from mlops_operator.api.base import parse_quantity
from mlops_operator.api.v1alpha1.pods import PodOptions

DEFAULT_IMAGE = "localhost/mlops-operator:dev"
__all__ = ["STORE_ENV_NAMES", "Settings", "StoreEnv", "parse_quantity", "pod_defaults_from_env"]

# --- the store's non-secret settings ------------------------------------------------------------
# Field of StoreEnv → the environment variable it is read from and rendered as. Only these names;
# never a prefix match (AZURE_STORAGE_ACCOUNT_KEY, AWS_SECRET_ACCESS_KEY stay out by construction).
STORE_ENV_NAMES: Final[Mapping[str, str]] = {
    "azure_storage_account_name": "AZURE_STORAGE_ACCOUNT_NAME",
    "aws_endpoint_url": "AWS_ENDPOINT_URL",
    "aws_endpoint_url_s3": "AWS_ENDPOINT_URL_S3",
    "aws_default_region": "AWS_DEFAULT_REGION",
    "aws_region": "AWS_REGION",
}
_URL_FIELDS: Final = frozenset({"aws_endpoint_url", "aws_endpoint_url_s3"})
_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class StoreEnv:
    """Non-secret settings every pod that reads or writes the store needs, besides MLOPS_STORE_URI.

    - azure_storage_account_name: the Blob account of `az://` (adlfs).
    - aws_endpoint_url, aws_endpoint_url_s3: an S3-compatible endpoint, e.g. MinIO (botocore reads
      both; the S3-specific one wins). botocore addresses a custom endpoint path-style by itself.
    - aws_default_region: the region botocore (s3fs) signs for; aws_region: the same for other
      SDKs a custom training image may use (botocore itself reads only AWS_DEFAULT_REGION).

    Not here: secrets (account keys, SAS tokens, connection strings, client secrets, access keys,
    which belong in the store Secret); what a webhook injects into each pod itself (AZURE_CLIENT_ID,
    AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST, AWS_ROLE_ARN,
    AWS_WEB_IDENTITY_TOKEN_FILE); paths to files a workload pod does not have (AWS_CA_BUNDLE).
    """

    azure_storage_account_name: str = ""
    aws_endpoint_url: str = ""
    aws_endpoint_url_s3: str = ""
    aws_default_region: str = ""
    aws_region: str = ""

    def __post_init__(self) -> None:
        for name, env_name in STORE_ENV_NAMES.items():
            value: str = getattr(self, name)
            if name in _URL_FIELDS:
                _check_endpoint(env_name, value)
            elif not _PLAIN_VALUE.match(value):
                raise ValueError(f"{env_name}={value!r}: only letters, digits, '.', '_' and '-'")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StoreEnv:
        return cls(**{name: env.get(env_name, "").strip() for name, env_name in STORE_ENV_NAMES.items()})

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(name, value) of every setting that is set, in a fixed order."""
        return tuple((STORE_ENV_NAMES[f.name], getattr(self, f.name)) for f in fields(self) if getattr(self, f.name))


def _check_endpoint(env_name: str, value: str) -> None:
    if not value:
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{env_name} must be an http(s) URL, got {value!r}")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        # Pods get this value in plain text: credentials belong in the store Secret.
        raise ValueError(f"{env_name} must carry no user, password, query or fragment")


_COUNT_CEILINGS: Final = (
    "max_replicas",
    "max_deadline_seconds",
    "max_n_estimators",
    "max_hidden_layer_size",
    "max_cache_size_mb",
)


# --- defaults of every workload pod's placement ---------------------------------------------------
# PodOptions field → the variable it is read from. The lists and maps are JSON, as in a pod spec.
POD_DEFAULT_NAMES: Final[Mapping[str, str]] = {
    "imagePullSecrets": "IMAGE_PULL_SECRETS",  # comma-separated Secret names
    "nodeSelector": "NODE_SELECTOR",
    "tolerations": "TOLERATIONS",
    "affinity": "AFFINITY",
    "priorityClassName": "PRIORITY_CLASS_NAME",
}


def pod_defaults_from_env(get: Callable[[str, str], str], prefix: str = "MLOPS_") -> PodOptions:
    """The operator's defaults for every workload pod, checked like a spec's own (a ValueError names
    the variable)."""
    values: dict[str, Any] = {}
    for key, name in POD_DEFAULT_NAMES.items():
        text = get(name, "").strip()
        if not text:
            continue
        if key == "imagePullSecrets":
            values[key] = [{"name": n.strip()} for n in text.split(",") if n.strip()] or None
        elif key == "priorityClassName":
            values[key] = text
        else:
            try:
                values[key] = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{prefix}{name} is not JSON: {exc}") from None
    try:
        return PodOptions.model_validate(values)
    except ValidationError as exc:
        names = ", ".join(prefix + POD_DEFAULT_NAMES[str(e["loc"][0])] for e in exc.errors() if e["loc"])
        raise ValueError(f"{names or 'the workload pod defaults'}: {exc}") from None


# --- the settings -------------------------------------------------------------------------------
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
    # Non-secret object-store settings, rendered as env of every pod that touches the store.
    store_env: StoreEnv = field(default_factory=StoreEnv)
    # AKS workload identity: ServiceAccounts get the client-id annotation, pods the "use" label.
    # One identity for every namespace (azure_client_id), or one per namespace (azure_client_ids,
    # MLOPS_AZURE_CLIENT_IDS="team-a=<id>,team-b=<id>"), which wins for its namespace.
    azure_client_id: str = ""
    azure_client_ids: tuple[tuple[str, str], ...] = ()
    # Who holds the object store's credentials (tenancy.store_refusal): "" (undeclared: an object
    # store is refused), "per-namespace" (each namespace's Secret or identity reaches only
    # <root>/<namespace>/), or "shared" (the administrator accepts one credential for every namespace).
    store_credentials: str = ""
    # Custom trainer images (trainer.image): exact refs, a repository (any tag or digest) or a prefix
    # ending in "*"; empty: none allowed. With trainer_image_digest_required, only @sha256: refs.
    allowed_trainer_images: tuple[str, ...] = ()
    trainer_image_digest_required: bool = False
    # Dataset sources beyond the namespace's own prefix of the store (URIs or prefixes ending in /).
    allowed_sources: tuple[str, ...] = ()
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
    # Limits of a workload container whose spec gives none (or an empty limits map).
    default_limit_cpu: str = "1"
    default_limit_memory: str = "1Gi"
    # Ceilings a spec may not exceed (builders.limits.exceeds_ceilings lists the violations).
    max_cpu: str = "8"
    max_memory: str = "32Gi"
    max_replicas: int = 20
    max_deadline_seconds: int = 24 * 3600
    max_n_estimators: int = 2000
    max_hidden_layer_size: int = 2048
    max_cache_size_mb: int = 2048
    # Placement of every workload pod whose spec says nothing of it (the notify and registry Jobs:
    # always): MLOPS_IMAGE_PULL_SECRETS, _NODE_SELECTOR, _TOLERATIONS, _AFFINITY, _PRIORITY_CLASS_NAME.
    pod_defaults: PodOptions = field(default_factory=PodOptions)
    extra_env: tuple[tuple[str, str], ...] = field(default=())
    # The approvals admission webhook (handlers/admission.py): its port (0: off), the directory of its
    # certificate (tls.crt, tls.key, optional ca.crt; "": one made at start), the
    # MutatingWebhookConfiguration the operator keeps, and how the API server reaches it: a Service
    # "<namespace>/<name>" (port 443) or a URL.
    admission_port: int = 0
    admission_cert_dir: str = ""
    admission_configuration: str = ""
    admission_service: str = ""
    admission_url: str = ""
    admission_timeout_seconds: int = 5

    def __post_init__(self) -> None:
        limits = (("cpu", self.default_limit_cpu, self.max_cpu), ("memory", self.default_limit_memory, self.max_memory))
        for what, default, ceiling in limits:
            if not Decimal(0) < parse_quantity(default) <= parse_quantity(ceiling):
                raise ValueError(
                    f"the default {what} limit {default} must be above 0 and at most the ceiling {ceiling}"
                )
        for name in _COUNT_CEILINGS:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        _check_tenancy(self)
        _check_admission(self)

    def client_id_for(self, namespace: str) -> str:
        """The workload identity of `namespace`'s ServiceAccounts: its own, else the shared one ("": none)."""
        return dict(self.azure_client_ids).get(namespace, self.azure_client_id)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, prefix: str = "MLOPS_") -> Settings:
        env = os.environ if env is None else env

        def get(name: str, default: str) -> str:
            return env.get(prefix + name, default)

        def enabled(name: str) -> bool:
            return get(name, "false").strip().lower() in {"1", "true", "yes"}

        def listed(name: str) -> tuple[str, ...]:
            return tuple(item.strip() for item in get(name, "").split(",") if item.strip())

        namespaces = listed("NAMESPACES")
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
            store_env=StoreEnv.from_env(env),
            azure_client_id=get("AZURE_CLIENT_ID", ""),
            azure_client_ids=_pairs(listed("AZURE_CLIENT_IDS"), prefix + "AZURE_CLIENT_IDS"),
            store_credentials=get("STORE_CREDENTIALS", "").strip(),
            allowed_trainer_images=listed("ALLOWED_TRAINER_IMAGES"),
            trainer_image_digest_required=enabled("TRAINER_IMAGE_DIGEST_REQUIRED"),
            allowed_sources=listed("ALLOWED_SOURCES"),
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
            default_limit_cpu=get("DEFAULT_LIMIT_CPU", "1").strip(),
            default_limit_memory=get("DEFAULT_LIMIT_MEMORY", "1Gi").strip(),
            max_cpu=get("MAX_CPU", "8").strip(),
            max_memory=get("MAX_MEMORY", "32Gi").strip(),
            max_replicas=int(get("MAX_REPLICAS", "20")),
            max_deadline_seconds=int(get("MAX_DEADLINE_SECONDS", str(24 * 3600))),
            max_n_estimators=int(get("MAX_N_ESTIMATORS", "2000")),
            max_hidden_layer_size=int(get("MAX_HIDDEN_LAYER_SIZE", "2048")),
            max_cache_size_mb=int(get("MAX_CACHE_SIZE_MB", "2048")),
            pod_defaults=pod_defaults_from_env(get, prefix),
            admission_port=int(get("ADMISSION_PORT", "0")),
            admission_cert_dir=get("ADMISSION_CERT_DIR", "").strip(),
            admission_configuration=get("ADMISSION_CONFIGURATION", "").strip(),
            admission_service=get("ADMISSION_SERVICE", "").strip(),
            admission_url=get("ADMISSION_URL", "").strip(),
            admission_timeout_seconds=int(get("ADMISSION_TIMEOUT_SECONDS", "5")),
        )


# --- what tenants may point the operator at (builders.tenancy applies them) ------------------------
STORE_CREDENTIALS: Final = ("", "per-namespace", "shared")
SOURCE_SCHEMES: Final = ("file", "s3", "az", "abfs")


def _pairs(items: tuple[str, ...], variable: str) -> tuple[tuple[str, str], ...]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{variable}: {item!r} is not <namespace>=<client id>")
        out.append((key.strip(), value.strip()))
    return tuple(out)


def _check_tenancy(settings: Settings) -> None:
    if settings.store_credentials not in STORE_CREDENTIALS:
        raise ValueError(
            f"MLOPS_STORE_CREDENTIALS={settings.store_credentials!r}: give per-namespace or shared (or nothing)"
        )
    for pattern in settings.allowed_trainer_images:
        if any(c.isspace() for c in pattern) or "*" in pattern[:-1]:
            raise ValueError(f"MLOPS_ALLOWED_TRAINER_IMAGES: {pattern!r}: no spaces, and '*' only at the end")
    for source in settings.allowed_sources:
        scheme, sep, rest = source.partition("://")
        if not sep or scheme not in SOURCE_SCHEMES or not rest.strip("/"):
            raise ValueError(
                f"MLOPS_ALLOWED_SOURCES: {source!r} is not a file://, s3://, az:// or abfs:// URI with a path"
            )
        if any(part in (".", "..") for part in rest.split("/")) or any(c in source for c in "?#%\\"):
            raise ValueError(f"MLOPS_ALLOWED_SOURCES: {source!r}: no '.' or '..' segments, '?', '#', '%' or '\\'")


def _check_admission(settings: Settings) -> None:
    if not settings.admission_port:
        return
    missing = [
        name for name, value in (("MLOPS_ADMISSION_CONFIGURATION", settings.admission_configuration),) if not value
    ]
    if not settings.admission_service and not settings.admission_url:
        missing.append("MLOPS_ADMISSION_SERVICE or MLOPS_ADMISSION_URL")
    if missing:
        raise ValueError(f"MLOPS_ADMISSION_PORT={settings.admission_port} needs {', '.join(missing)}")
    if not 1 <= settings.admission_timeout_seconds <= 30:
        raise ValueError("MLOPS_ADMISSION_TIMEOUT_SECONDS must be 1..30 (the API server's limits)")
