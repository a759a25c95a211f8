"""Profile, training, drift-check, registry and webhook-notify Jobs.

Every Job: deterministic name (so a retried reconcile finds the same Job, never a second one), owner
reference to its custom resource (GC removes it, and its Pods, with the owner), small backoffLimit,
activeDeadlineSeconds, ttlSecondsAfterFinished, and a podFailurePolicy: evictions and other
disruptions are ignored, the reserved exit codes of data and spec errors fail the Job at once.

Placement (node selector, tolerations, affinity, priority class, image pull secrets): a profile,
training or drift-check pod takes its spec's (Dataset, spec.trainer, DriftMonitor), each field
over the operator's default. The registry and notify Jobs run the operator's image with small fixed
resources and take the operator's defaults only: a GPU trainer's node selector would otherwise
send a 50m bookkeeping pod to (and scale up) a GPU node.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from mlops_operator import contracts
from mlops_operator.api.base import Resource, Resources
from mlops_operator.api.plans import (
    DRIFT_SPEC_FIELDS,
    ChampionRef,
    DatasetRetentionPlan,
    DriftPlan,
    ModelRetentionPlan,
    NotifyPlan,
    ProductionRowsPlan,
    ProfilePlan,
    RegistryPlan,
    TrainingPlan,
)
from mlops_operator.api.v1alpha1.dataset import Dataset, DatasetRetention
from mlops_operator.api.v1alpha1.driftmonitor import DriftMonitor
from mlops_operator.api.v1alpha1.model import Model, ModelVersion
from mlops_operator.api.v1alpha1.pods import PodOptions
from mlops_operator.builders import limits, meta, pods
from mlops_operator.settings import Settings

WORKLOAD_CONTAINER = "main"
PROFILE_BACKOFF_LIMIT = 2
DRIFT_BACKOFF_LIMIT = 1
NOTIFY_BACKOFF_LIMIT = 2
NOTIFY_DEADLINE_SECONDS = 120
REGISTRY_BACKOFF_LIMIT = 2
REGISTRY_DEADLINE_SECONDS = 180
STAMP_FORMAT = "%Y%m%d%H%M%S"


def _plan_json(plan: Any) -> str:
    return json.dumps(plan.dump(), sort_keys=True, separators=(",", ":"))


def _job(
    name: str,
    owner: Resource,
    component: contracts.Component,
    container: dict[str, Any],
    settings: Settings,
    *,
    backoff_limit: int,
    deadline_seconds: int,
    extra_labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    service_account: str | None = None,
    store: bool = True,
    options: PodOptions | None = None,
) -> dict[str, Any]:
    metadata = meta.object_meta(name, owner, component, extra_labels=extra_labels, annotations=annotations)
    rules: list[dict[str, Any]] = [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {
            "action": "FailJob",
            "onExitCodes": {
                "containerName": container["name"],
                "operator": "In",
                "values": sorted(int(code) for code in contracts.ExitCode.permanent()),
            },
        },
    ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": backoff_limit,
            "activeDeadlineSeconds": deadline_seconds,
            "ttlSecondsAfterFinished": settings.job_ttl_seconds,
            "podFailurePolicy": {"rules": rules},
            "template": {
                # Workload identity projects a token that reaches the store: only for pods that touch it.
                "metadata": {"labels": {**metadata["labels"], **(pods.identity_labels(settings) if store else {})}},
                "spec": pods.pod_spec(
                    [container],
                    settings,
                    service_account=service_account or settings.workload_service_account,
                    restart_policy="Never",
                    store=store,
                    options=options,
                ),
            },
        },
    }


# --- Dataset --------------------------------------------------------------------------------------
def profile_request(dataset: Dataset, tick: int, refresh: str = "") -> dict[str, Any]:
    """What identifies one profiling run: the spec, with a refresh interval the refresh tick, and the
    refresh request (contracts.ANNOTATION_REFRESH_REQUESTED) in force, if any. The default retention
    is left out (names stay those of operators that had none); another bound runs a Job that applies it."""
    spec = dataset.spec.dump()
    if spec.get("retention") == DatasetRetention().dump():
        del spec["retention"]
    request = {"spec": spec | {"resources": limits.hashable_resources(spec["resources"])}, "tick": tick}
    return request | ({"refresh": refresh} if refresh else {})


def profile_job_name(dataset: Dataset, tick: int, refresh: str = "") -> str:
    return meta.child_name(dataset.name, "profile", meta.hash8(profile_request(dataset, tick, refresh)))


def profile_plan(dataset: Dataset, settings: Settings, retention: DatasetRetentionPlan | None = None) -> ProfilePlan:
    """The plan carries the current version and its listing fingerprint (an equal listing is unchanged)
    and which stored versions to keep (reconcilers/retention.py; None: delete none)."""
    status = dataset.status
    return ProfilePlan(
        namespace=dataset.namespace,
        dataset=dataset.name,
        spec=dataset.spec,
        store_uri=settings.store_uri,
        current_version=status.version if status else None,
        current_listing_fingerprint=status.listing_fingerprint if status and status.version else None,
        retention=retention,
    )


def profile_job(
    dataset: Dataset,
    settings: Settings,
    tick: int,
    refresh: str = "",
    retention: DatasetRetentionPlan | None = None,
) -> dict[str, Any]:
    args = ["profile", contracts.PLAN_FLAG, _plan_json(profile_plan(dataset, settings, retention))]
    container = pods.workload_container(WORKLOAD_CONTAINER, args, settings, dataset.spec.resources)
    return _job(
        profile_job_name(dataset, tick, refresh),
        dataset,
        contracts.Component.PROFILE,
        container,
        settings,
        backoff_limit=PROFILE_BACKOFF_LIMIT,
        deadline_seconds=settings.profile_deadline_seconds,
        annotations={contracts.ANNOTATION_SCHEDULED_TICK: str(tick)},
        options=dataset.spec,
    )


# --- Model ----------------------------------------------------------------------------------------
def training_spec_hash(model: Model) -> str:
    """Hash of the fields whose change calls for a new training run (not approval or serving)."""
    spec = model.spec
    trainer = spec.trainer.dump()
    trainer["resources"] = limits.hashable_resources(trainer["resources"])
    return meta.hash8({"task": spec.task, "target": spec.target, "trainer": trainer, "dataset": spec.dataset_ref.name})


def training_request(spec_hash: str, dataset_version: str, retrain_request: str | None) -> dict[str, str]:
    return {"spec": spec_hash, "dataset": dataset_version, "retrain": retrain_request or ""}


def training_job_name(model: Model, request: dict[str, str]) -> str:
    return meta.child_name(model.name, "train", meta.hash8(request))


def training_plan(
    model: Model,
    *,
    version: int,
    target: str,
    dataset_version: str,
    data_uri: str,
    champion: ChampionRef | None,
    trigger: str,
    settings: Settings,
    production: ProductionRowsPlan | None = None,
) -> TrainingPlan:
    trainer = model.spec.trainer
    return TrainingPlan(
        namespace=model.namespace,
        model=model.name,
        version=version,
        task=model.spec.task,
        target=target,
        estimator=trainer.estimator or "",
        params=dict(trainer.params),
        test_size=trainer.test_size,
        seed=trainer.seed,
        dataset_version=dataset_version,
        data_uri=data_uri,
        output_dir=contracts.model_version_dir(settings.store_uri, model.namespace, model.name, version),
        champion=champion,
        image=trainer.image or settings.image,
        trigger=trigger,
        production=production,
    )


def production_rows_plan(
    model: Model, settings: Settings, *, now: datetime, new_since: datetime | None, require_new: bool
) -> ProductionRowsPlan | None:
    """The labelled production rows of the window ending `now` (spec.retrain.productionLabels); None when off."""
    wanted = model.spec.retrain.production_labels
    if not wanted.enabled:
        return None
    return ProductionRowsPlan(
        collected_prefix=contracts.collected_prefix(settings.store_uri, model.namespace, model.name),
        labels_prefix=contracts.labels_prefix(settings.store_uri, model.namespace, model.name),
        window_start=now - timedelta(seconds=wanted.window_seconds),
        window_end=now,
        max_rows=wanted.max_rows,
        new_since=new_since,
        require_new=require_new,
    )


def training_job(model: Model, plan: TrainingPlan, request: dict[str, str], settings: Settings) -> dict[str, Any]:
    trainer = model.spec.trainer
    args = [contracts.PLAN_FLAG, _plan_json(plan)]
    if trainer.image:  # a custom image honours the same contract; its command replaces ours
        container = pods.workload_container(
            WORKLOAD_CONTAINER,
            args,
            settings,
            trainer.resources,
            image=trainer.image,
            command=trainer.command,
        )
        if not trainer.command:
            container.pop("command")  # the image's own entrypoint
    else:
        container = pods.workload_container(WORKLOAD_CONTAINER, ["train", *args], settings, trainer.resources)
    annotations = {
        contracts.ANNOTATION_TRAINING_REQUEST: meta.canonical_json(request),
        contracts.ANNOTATION_TRIGGER: plan.trigger[:256],
    }
    if plan.champion is not None:
        annotations[contracts.ANNOTATION_CHAMPION_VERSION] = str(plan.champion.version)
    return _job(
        training_job_name(model, request),
        model,
        contracts.Component.TRAIN,
        container,
        settings,
        backoff_limit=trainer.backoff_limit,
        deadline_seconds=trainer.active_deadline_seconds,
        extra_labels={
            contracts.LABEL_MODEL_VERSION: str(plan.version),
            contracts.LABEL_DATASET_VERSION: meta.label_value(plan.dataset_version),
        },
        annotations=annotations,
        options=trainer,
    )


def registry_digest(versions: list[ModelVersion]) -> str:
    """Identifies one content of `status.versions` (a mirror Job writes exactly that content)."""
    return meta.hash8([v.dump() for v in versions])


def registry_job_name(model: Model, digest: str, tick: int | None = None) -> str:
    """The mirror Job of one content; with a collection `tick`, of that day too (its Job also prunes the
    collected rows of a Model no DriftMonitor checks: reconcilers/retention.py)."""
    # The uid keeps a Model created again under the same name from meeting its predecessor's Job
    # (same content, same digest) while the garbage collector has not removed it yet.
    identity: dict[str, Any] = {"uid": model.uid, "digest": digest}
    return meta.child_name(model.name, "registry", meta.hash8(identity | ({"tick": tick} if tick is not None else {})))


def registry_job(
    model: Model,
    versions: list[ModelVersion],
    settings: Settings,
    retention: ModelRetentionPlan | None = None,
    tick: int | None = None,
) -> dict[str, Any]:
    """Mirror `versions` into the store's registry.json and report what the store holds; then delete
    what `retention` says (artifacts of dropped versions; on collection `tick`, old collected rows)."""
    digest = registry_digest(versions)
    plan = RegistryPlan(
        namespace=model.namespace,
        model=model.name,
        registry_uri=contracts.model_registry_uri(settings.store_uri, model.namespace, model.name),
        versions=versions,
        retention=retention,
    )
    container = pods.workload_container(
        WORKLOAD_CONTAINER,
        ["registry", contracts.PLAN_FLAG, _plan_json(plan)],
        settings,
        Resources.model_validate(
            {"requests": {"cpu": "50m", "memory": "96Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
        ),
    )
    return _job(
        registry_job_name(model, digest, tick),
        model,
        contracts.Component.REGISTRY,
        container,
        settings,
        backoff_limit=REGISTRY_BACKOFF_LIMIT,
        deadline_seconds=REGISTRY_DEADLINE_SECONDS,
        annotations={contracts.ANNOTATION_REGISTRY_DIGEST: digest},
    )


# --- DriftMonitor ---------------------------------------------------------------------------------
def stamp(tick: datetime) -> str:
    return tick.strftime(STAMP_FORMAT)


def drift_job_name(monitor: DriftMonitor, tick: datetime) -> str:
    return meta.child_name(monitor.name, "drift", stamp(tick))


def drift_plan(monitor: DriftMonitor, *, tick: datetime, profile_uri: str, settings: Settings) -> DriftPlan:
    spec = monitor.spec
    return DriftPlan(
        **spec.model_dump(include=set(DRIFT_SPEC_FIELDS)),
        namespace=monitor.namespace,
        monitor=monitor.name,
        model=spec.model_ref.name,
        profile_uri=profile_uri,
        collected_prefix=contracts.collected_prefix(settings.store_uri, monitor.namespace, spec.model_ref.name),
        window_start=tick - timedelta(seconds=spec.window_seconds),
        window_end=tick,
        output_dir=contracts.drift_run_dir(settings.store_uri, monitor.namespace, monitor.name, stamp(tick)),
    )


def drift_job(monitor: DriftMonitor, plan: DriftPlan, tick: datetime, settings: Settings) -> dict[str, Any]:
    args = ["drift", contracts.PLAN_FLAG, _plan_json(plan)]
    container = pods.workload_container(WORKLOAD_CONTAINER, args, settings, monitor.spec.resources)
    return _job(
        drift_job_name(monitor, tick),
        monitor,
        contracts.Component.DRIFT,
        container,
        settings,
        backoff_limit=DRIFT_BACKOFF_LIMIT,
        deadline_seconds=settings.drift_deadline_seconds,
        extra_labels={contracts.LABEL_MODEL: monitor.spec.model_ref.name},
        annotations={contracts.ANNOTATION_SCHEDULED_TICK: tick.isoformat()},
        options=monitor.spec,
    )


def webhook_payload(
    monitor: DriftMonitor,
    *,
    verdict: str,
    drifted_features: list[str],
    drifted_share: float | None,
    report_uri: str | None,
    tick: datetime,
) -> dict[str, Any]:
    """Slack and Teams incoming webhooks both render `text`; the other keys serve generic receivers."""
    features = ", ".join(drifted_features[:20]) or "none"
    share = f"{drifted_share:.0%}" if drifted_share is not None else "n/a"
    text = (
        f"Drift detected by DriftMonitor {monitor.namespace}/{monitor.name} on model "
        f"{monitor.spec.model_ref.name} at {tick.isoformat()}: {share} of features drifted ({features})."
    )
    if report_uri:
        text += f" Report: {report_uri}"
    payload: dict[str, Any] = {"text": text}
    if monitor.spec.action.webhook is not None and monitor.spec.action.webhook.format == "teams":
        payload |= {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": "Drift detected",
        }
    payload |= {
        "namespace": monitor.namespace,
        "monitor": monitor.name,
        "model": monitor.spec.model_ref.name,
        "verdict": verdict,
        "driftedShare": drifted_share,
        "driftedFeatures": drifted_features,
        "reportUri": report_uri,
        "time": tick.isoformat(),
    }
    return payload


def notify_job_name(monitor: DriftMonitor, tick: datetime) -> str:
    return meta.child_name(monitor.name, "notify", stamp(tick))


def notify_plan(payload: dict[str, Any], settings: Settings) -> NotifyPlan:
    return NotifyPlan(
        payload=payload,
        allow_http=settings.webhook_allow_http,
        allow_private=settings.webhook_allow_private,
    )


def notify_job(monitor: DriftMonitor, payload: dict[str, Any], tick: datetime, settings: Settings) -> dict[str, Any]:
    """Post the payload to the webhook: the pod gets the URL through a secretKeyRef, the operator never
    reads the Secret. The pod never touches the store: no claim, no store settings, no store Secret."""
    webhook = monitor.spec.action.webhook
    if webhook is None:
        raise ValueError("notify_job needs spec.action.webhook")
    container = pods.workload_container(
        WORKLOAD_CONTAINER,
        ["notify", contracts.PLAN_FLAG, _plan_json(notify_plan(payload, settings))],
        settings,
        Resources.model_validate(
            {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}}
        ),
        store=False,
    )
    container["env"] = [
        {
            "name": contracts.ENV_WEBHOOK_URL,
            "valueFrom": {"secretKeyRef": {"name": webhook.secret_ref.name, "key": webhook.secret_ref.key}},
        },
        {"name": "HOME", "value": pods.TMP_PATH},
    ]
    return _job(
        notify_job_name(monitor, tick),
        monitor,
        contracts.Component.DRIFT,
        container,
        settings,
        backoff_limit=NOTIFY_BACKOFF_LIMIT,
        deadline_seconds=NOTIFY_DEADLINE_SECONDS,
        extra_labels={contracts.LABEL_MODEL: monitor.spec.model_ref.name, contracts.LABEL_ROLE: contracts.ROLE_NOTIFY},
        store=False,
    )
