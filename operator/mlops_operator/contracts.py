"""The one place the operator and the workloads share names.

Builders write these (flags, env vars, labels, annotations, paths); workloads and reconcilers read
them. Every label and annotation name the project writes or reads is defined here and nowhere else.
Nothing here imports kopf or a Kubernetes client, so a training or serving pod can import it cheaply.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from typing import Final

GROUP: Final = "mlops.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

# --- labels and annotations -------------------------------------------------------------
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "mlops-operator"
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"  # on the generated CRDs
# Not app.kubernetes.io/instance: Argo CD tracks its own objects by that label and would prune ours.
LABEL_INSTANCE: Final = f"{GROUP}/instance"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_DATASET: Final = f"{GROUP}/dataset"
LABEL_MODEL: Final = f"{GROUP}/model"
LABEL_DRIFT_MONITOR: Final = f"{GROUP}/driftmonitor"
LABEL_BATCH_SCORING: Final = f"{GROUP}/batchscoring"
LABEL_MODEL_VERSION: Final = f"{GROUP}/model-version"
LABEL_DATASET_VERSION: Final = f"{GROUP}/dataset-version"
# What a Job does when its component has more than one kind of Job (a drift check, or a notification).
LABEL_ROLE: Final = f"{GROUP}/role"
ROLE_NOTIFY: Final = "notify"
# Set by the Job controller on a Job's Pods (Kubernetes 1.27+ sets both; older versions only the legacy one).
LABEL_JOB_NAME: Final = "batch.kubernetes.io/job-name"
LABEL_JOB_NAME_LEGACY: Final = "job-name"
# AKS workload identity: its webhook injects the federated token only into pods with this label,
# for the client id annotated on their ServiceAccount.
LABEL_WORKLOAD_IDENTITY: Final = "azure.workload.identity/use"
ANNOTATION_WORKLOAD_IDENTITY_CLIENT_ID: Final = "azure.workload.identity/client-id"

ANNOTATION_RETRAIN_REQUESTED: Final = f"{GROUP}/retrain-requested"
# JSON object {"<version>": "<reason>"}: versions a person rejected; they are never approved or served.
ANNOTATION_REJECTED_VERSIONS: Final = f"{GROUP}/rejected-versions"
# Written only by the operator's admission webhook (handlers/admission.py), from the API server's
# authenticated userInfo; a client's own value is overwritten. APPROVALS: a JSON list of recent
# approvals and rejections ({"version", "action", "user", "groups", "at"}); TRIGGERED_BY: who last
# created or edited the spec or asked for a retrain ({"user", "groups", "at"}).
ANNOTATION_APPROVALS: Final = f"{GROUP}/approvals"
ANNOTATION_TRIGGERED_BY: Final = f"{GROUP}/triggered-by"
# "<version>": a person's approval of a version that spec.approvedVersion already names (the second
# of two approvers); the webhook records it and removes the annotation.
ANNOTATION_APPROVE: Final = f"{GROUP}/approve"
ANNOTATION_SPEC_HASH: Final = f"{GROUP}/spec-hash"
ANNOTATION_TRIGGER: Final = f"{GROUP}/trigger"
# Operator-internal annotations on Jobs and Deployments: what the operator needs to read a child back
# after a restart.
ANNOTATION_CHAMPION_VERSION: Final = f"{GROUP}/champion-version"
ANNOTATION_TRAINING_REQUEST: Final = f"{GROUP}/training-request"
ANNOTATION_SCHEDULED_TICK: Final = f"{GROUP}/scheduled-tick"
ANNOTATION_REGISTRY_DIGEST: Final = f"{GROUP}/registry-digest"
ANNOTATION_SERVED_VERSION: Final = f"{GROUP}/served-version"
KOPF_PREFIX: Final = f"kopf.{GROUP}"
FINALIZER: Final = f"{GROUP}/finalizer"


def rejected_versions(annotations: Mapping[str, str]) -> dict[int, str]:
    """Read ANNOTATION_REJECTED_VERSIONS; a malformed value counts as no rejections, a malformed key is
    skipped. Keys are 1-9 ASCII digits: str.isdigit() also accepts "²", which int() refuses, and a
    5,000-digit key is no version anyone trained."""
    raw = annotations.get(ANNOTATION_REJECTED_VERSIONS)
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {int(k): str(v) for k, v in parsed.items() if _VERSION_KEY.fullmatch(str(k))}


_VERSION_KEY = re.compile(r"[0-9]{1,9}")


class Component(enum.StrEnum):
    PROFILE = "profile"
    TRAIN = "train"
    SERVE = "serve"
    DRIFT = "drift"
    REGISTRY = "registry"
    EVENTS = "events"  # release events (notify-events Jobs)
    BATCH_SCORE = "batch-score"  # BatchScoring's Indexed Jobs


# --- environment shared by every workload -------------------------------------------------
ENV_STORE_URI: Final = "MLOPS_STORE_URI"
ENV_TERMINATION_LOG: Final = "MLOPS_TERMINATION_LOG"
ENV_IMAGE: Final = "MLOPS_IMAGE"
# The notify Job's webhook URL, from a secretKeyRef: the operator never reads it, nothing logs it.
ENV_WEBHOOK_URL: Final = "MLOPS_WEBHOOK_URL"
DEFAULT_TERMINATION_LOG: Final = "/dev/termination-log"
TERMINATION_MESSAGE_LIMIT: Final = 4096
STORE_MOUNT_PATH: Final = "/var/lib/mlops"
DEFAULT_STORE_URI: Final = f"file://{STORE_MOUNT_PATH}"
SERVER_PORT: Final = 8080


class ExitCode(enum.IntEnum):
    """Reserved exit codes of the workload programs.

    The operator maps them to condition reasons, and the Job's podFailurePolicy fails the Job at once
    on the ones a retry cannot fix (data and spec errors).
    """

    OK = 0
    USAGE = 2  # argparse's own
    DATA_ERROR = 10  # empty, malformed, missing target, wrong types, quality rule "fail"
    SPEC_ERROR = 11  # unknown/disallowed estimator, bad hyperparameters, bad schema
    STORE_ERROR = 12  # artifact store unreachable or object missing (retryable)
    INTEGRITY_ERROR = 13  # sha256 mismatch or untrusted artifact
    DELIVERY_ERROR = 14  # a webhook did not take the notification (retryable)

    @classmethod
    def permanent(cls) -> tuple[ExitCode, ...]:
        return (cls.DATA_ERROR, cls.SPEC_ERROR, cls.INTEGRITY_ERROR)


# --- CLI flags: builders render them, workloads parse them ------------------------------------
# profile, train, drift, registry and notify take one flag: their plan (api/plans.py) as JSON.
PLAN_FLAG: Final = "--spec"


class ServeFlags:
    MODEL_NAME = "--model-name"
    MODEL_VERSION = "--model-version"
    ARTIFACT_URI = "--artifact-uri"
    SHA256 = "--sha256"
    PORT = "--port"
    HOST = "--host"
    COLLECT_URI = "--collect-uri"
    SAMPLE_RATE = "--sample-rate"
    FLUSH_INTERVAL = "--flush-interval"
    FLUSH_ROWS = "--flush-rows"
    WORKERS = "--workers"


# --- artifact store layout --------------------------------------------------------------------
def _join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *(p.strip("/") for p in parts)])


def dataset_version_dir(root: str, namespace: str, dataset: str, version: str) -> str:
    return _join(root, namespace, "datasets", dataset, version)


def dataset_data_uri(root: str, namespace: str, dataset: str, version: str) -> str:
    """Immutable snapshot of the data at this content version (what training reads)."""
    return _join(dataset_version_dir(root, namespace, dataset, version), "data.parquet")


def dataset_profile_uri(root: str, namespace: str, dataset: str, version: str) -> str:
    return _join(dataset_version_dir(root, namespace, dataset, version), "profile.json")


def model_version_dir(root: str, namespace: str, model: str, version: int) -> str:
    return _join(root, namespace, "models", model, f"v{version}")


def model_artifact_uri(root: str, namespace: str, model: str, version: int) -> str:
    return _join(model_version_dir(root, namespace, model, version), "model.skops")


def model_registry_uri(root: str, namespace: str, model: str) -> str:
    """The registry mirror: every version record, so status can be rebuilt from the store."""
    return _join(root, namespace, "models", model, "registry.json")


def collected_prefix(root: str, namespace: str, model: str) -> str:
    """Scoring inputs/outputs: <prefix>/date=YYYY-MM-DD/hour=HH/<part>.parquet."""
    return _join(root, namespace, "collected", model)


def labels_prefix(root: str, namespace: str, model: str) -> str:
    """Ground truth that arrives later, joined to collected rows by prediction id:
    <prefix>/date=YYYY-MM-DD/<part>.parquet with LABEL_ID_COLUMN, LABEL_VALUE_COLUMN, LABEL_TIME_COLUMN.
    The server's feedback endpoint writes here; a team's own pipeline may drop files here too."""
    return _join(root, namespace, "labels", model)


def shadow_prefix(root: str, namespace: str, model: str) -> str:
    """A Shadow rollout's candidate answers, recorded by the mirroring champion beside its collected rows:
    <prefix>/date=YYYY-MM-DD/hour=HH/<part>.parquet with COLLECT_ID_COLUMN, COLLECT_TIME_COLUMN,
    COLLECT_PREDICTION_COLUMN and COLLECT_MODEL_VERSION_COLUMN (the candidate's), and
    SHADOW_CHAMPION_PREDICTION_COLUMN and SHADOW_CHAMPION_VERSION_COLUMN (the champion's answer to the
    same row), so both can be scored on the same labelled rows."""
    return _join(root, namespace, "shadow", model)


def drift_run_dir(root: str, namespace: str, monitor: str, stamp: str) -> str:
    return _join(root, namespace, "drift", monitor, stamp)


def batch_run_dir(root: str, namespace: str, model: str, batch: str, run: str) -> str:
    """One BatchScoring run's predictions, under the Model's prefix: <dir>/part-<index>.parquet."""
    return _join(root, namespace, "models", model, "batch", batch, run)


# Set by the Job controller in every pod of an Indexed Job: the pod's completion index.
ENV_JOB_COMPLETION_INDEX: Final = "JOB_COMPLETION_INDEX"
# The row-ordinal column of a batch prediction file when the BatchScoring names no key columns.
BATCH_ROW_COLUMN: Final = "_mlops_row"


# Columns the server adds to each collected row; drift checks ignore them.
COLLECT_TIME_COLUMN: Final = "_mlops_ts"
COLLECT_PREDICTION_COLUMN: Final = "_mlops_prediction"
COLLECT_MODEL_VERSION_COLUMN: Final = "_mlops_model_version"
# The id every answered prediction gets (V2 response `id`, header PREDICTION_ID_HEADER); a client's own
# request id is kept. One id per request; row i of a batch is "<id>" for one row, "<id>:<i>" otherwise.
COLLECT_ID_COLUMN: Final = "_mlops_id"
PREDICTION_ID_HEADER: Final = "X-Prediction-Id"

# Columns of a shadow file under shadow_prefix() besides the collected ones: the champion's answer.
SHADOW_CHAMPION_PREDICTION_COLUMN: Final = "_mlops_champion_prediction"
SHADOW_CHAMPION_VERSION_COLUMN: Final = "_mlops_champion_version"

# Columns of a label file under labels_prefix().
LABEL_ID_COLUMN: Final = "id"
LABEL_VALUE_COLUMN: Final = "label"
LABEL_TIME_COLUMN: Final = "labelled_at"
# Optional: the predicted class's probabilities, for live roc_auc. Binary models: the probability of the
# second class in sorted order (scikit-learn's classes_[1]) as a float; more classes: a list of floats in
# that order. Rows without it leave roc_auc out of live quality (with the reason).
COLLECT_PROBABILITY_COLUMN: Final = "_mlops_probability"

# Reasons of the retrain requests a DriftMonitor writes (ANNOTATION_RETRAIN_REQUESTED, "<RFC3339>;<reason>").
# A Model answers such a request with NoNewData when its Dataset has no version the serving one was not
# trained on; any other reason is a person's (`kubectl mlops retrain`) and retrains on the same data.
AUTOMATIC_RETRAIN_REASONS: Final = ("drift:", "prediction drift:", "quality:")


def automatic_retrain(annotation: str) -> bool:
    """Whether a retrain request came from a DriftMonitor's trigger (by its reason), not from a person."""
    _, _, reason = annotation.partition(";")
    return reason.strip().startswith(AUTOMATIC_RETRAIN_REASONS)


# "<RFC3339>;<reason>" on a Dataset: list the source again now (a DriftMonitor sets it before a retrain;
# `kubectl annotate` works too). status.lastRefresh records the outcome: NewVersion, Unchanged or Failed.
ANNOTATION_REFRESH_REQUESTED: Final = f"{GROUP}/refresh-requested"


def dataset_dir(root: str, namespace: str, dataset: str) -> str:
    """A Dataset's versions (<dir>/<version>/) and, beside them, what its profile Jobs reuse:
    <dir>/parts/ (each source file parsed under a schema, by content hash) and <dir>/cache/."""
    return _join(root, namespace, "datasets", dataset)
