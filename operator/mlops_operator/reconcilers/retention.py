"""What the store keeps of Datasets' versions and Models' artifacts: decided here, deleted by Jobs.

The operator pod has no store credentials, so it never deletes; it decides what must stay from what it
reads anyway (the status of the Dataset and of every Model in the namespace) and hands that to a Job
of the namespace that holds them: the profile Job for a Dataset's versions (after its run), the
registry Job for a Model's artifacts and, when no DriftMonitor checks the Model (the drift Job prunes
then), for its collected rows and labels. The Job reports what it deleted; status adds it up
(`status.pruned`) and a `Pruned` Event says it.

Why the keep-set is computed here and not in the Job: which dataset versions are still needed is in
the Models' status (what each version trained on, the serving one, the rollback candidates within
spec.maxVersions), which the Job cannot read (its ServiceAccount has no API access) and the store's
registry.json holds only for Models that still exist and have mirrored. A Model of the Dataset that
has not read its registry back from the store yet (just created, or created again over an old one)
may still bring back references, so while one exists no dataset version is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from mlops_operator import contracts
from mlops_operator.api.plans import DatasetRetentionPlan, ModelRetentionPlan
from mlops_operator.api.results import ProfileResult, RegistryResult
from mlops_operator.api.v1alpha1.dataset import Dataset, DatasetStatus
from mlops_operator.api.v1alpha1.model import Model, ModelStatus
from mlops_operator.api.v1alpha1.retention import StorePruned
from mlops_operator.reconcilers import schedule
from mlops_operator.reconcilers.context import EventSpec, normal

PRUNED: Final = "Pruned"  # the Event reason
DAY: Final = 86400  # collected rows of an unmonitored Model are pruned at least this often


def model_references(status: dict[str, Any]) -> set[str]:
    """The dataset versions a Model's raw status refers to: every listed version's, the training one's."""
    found = {str(v.get("datasetVersion")) for v in status.get("versions") or [] if isinstance(v, dict)}
    found.add(str((status.get("activeTraining") or {}).get("datasetVersion")))
    found.add(str(status.get("trainedDatasetVersion")))
    return found - {"None", ""}


def registry_read(model: dict[str, Any]) -> bool:
    """The Model has read its registry back from the store once (its references are all in status)."""
    return bool(((model.get("status") or {}).get("registry") or {}).get("syncedAt"))


def dataset_plan(
    dataset: Dataset, status: DatasetStatus, models: Iterable[dict[str, Any]]
) -> DatasetRetentionPlan | None:
    """What the Dataset's next profile Job keeps; None (delete nothing) while a Model of this Dataset
    has not read its registry back from the store."""
    referenced = {status.version} if status.version else set()
    for model in models:
        if ((model.get("spec") or {}).get("datasetRef") or {}).get("name") == dataset.name and not registry_read(model):
            return None
        referenced |= model_references(model.get("status") or {})  # any Model: its datasetRef may have moved
    return DatasetRetentionPlan(
        keep=dataset.spec.retention.versions,
        recent=[v.version for v in reversed(status.versions)],
        referenced=sorted(referenced),
    )


def record_dataset_pruned(status: DatasetStatus, result: ProfileResult, keep: int, now: datetime) -> list[EventSpec]:
    """Add a profile Job's deletions to status.pruned; the versions it deleted leave status.versions."""
    if not (result.pruned_versions or result.pruned_objects):
        return []
    status.pruned = (status.pruned or StorePruned()).add(
        result.pruned_versions or 0, result.pruned_objects or 0, result.pruned_bytes or 0, now
    )
    gone = set(result.pruned_recent or [])
    status.versions = [v for v in status.versions if v.version[:16] not in gone]
    return [
        normal(
            PRUNED,
            f"retention deleted {result.pruned_versions} dataset versions ({result.pruned_objects} objects, "
            f"{result.pruned_bytes} bytes) beyond the newest {keep} that no Model version references",
        )
    ]


def collection_tick(model: Model, monitored: bool, now: datetime) -> int | None:
    """The day whose registry Job prunes an unmonitored Model's collected rows and labels; None when
    nothing is collected or a DriftMonitor's checks prune them."""
    serving = model.spec.serving
    if monitored or not serving.enabled or not serving.collection.enabled:
        return None
    return schedule.interval_tick(DAY, now)


def seconds_to_next_tick(tick: int, now: datetime) -> float:
    return schedule.seconds_until(schedule.interval_start(DAY, tick + 1), now) + 1


def model_plan(model: Model, status: ModelStatus, store_uri: str, tick: int | None) -> ModelRetentionPlan:
    """What the Model's next registry Job deletes: artifacts of versions status no longer lists, and
    collected rows, labels and recorded shadow rows past retentionDays on a collection `tick` (counted
    from its start)."""
    ns, name = model.namespace, model.name
    prefixes = [
        contracts.collected_prefix(store_uri, ns, name),
        contracts.labels_prefix(store_uri, ns, name),
        contracts.shadow_prefix(store_uri, ns, name),
    ]
    return ModelRetentionPlan(
        model_dir=contracts.model_registry_uri(store_uri, ns, name).rsplit("/", 1)[0],
        keep_versions=[v.version for v in status.versions],
        partition_prefixes=prefixes if tick is not None else [],
        max_age_days=model.spec.serving.collection.retention_days,
        now=schedule.interval_start(DAY, tick) if tick is not None else None,
    )


def record_model_pruned(status: ModelStatus, result: RegistryResult, now: datetime) -> list[EventSpec]:
    """Add a registry Job's deletions to status.pruned."""
    if not (result.pruned_versions or result.pruned_objects):
        return []
    status.pruned = (status.pruned or StorePruned()).add(
        result.pruned_versions or 0, result.pruned_objects or 0, result.pruned_bytes or 0, now
    )
    return [
        normal(
            PRUNED,
            f"retention deleted the artifacts of {result.pruned_versions} versions no longer in status and "
            f"collected data: {result.pruned_objects} objects, {result.pruned_bytes} bytes",
        )
    ]
