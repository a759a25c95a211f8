"""The baseline a check compares with: the profile of the dataset version the serving model was
trained on. Pure.

Comparing with the Dataset's latest version would hide exactly the drift that matters once the data
moved on: after a refresh the latest profile already looks like production, while the serving model
still reflects the version it learnt from (its ModelVersion record names it). That version's profile
is found in the Dataset's status.versions; when it is not there (pruned: status keeps the newest 20,
or the monitor names another Dataset, or nothing serves yet) the latest version is the baseline, and
the Baseline's message says why.
"""

from __future__ import annotations

from mlops_operator.api.v1alpha1.dataset import Dataset
from mlops_operator.api.v1alpha1.driftmonitor import Baseline, DriftMonitor
from mlops_operator.api.v1alpha1.model import Model


def dataset_name(monitor: DriftMonitor, model: Model) -> str:
    ref = monitor.spec.dataset_ref
    return ref.name if ref is not None else model.spec.dataset_ref.name


def serving_dataset_version(model: Model) -> tuple[int | None, str | None]:
    """The serving version and the dataset version it was trained on (either may be unknown)."""
    status = model.status
    if status is None or status.serving_version is None:
        return None, None
    record = next((v for v in status.versions if v.version == status.serving_version), None)
    return status.serving_version, record.dataset_version if record is not None else None


def choose(monitor: DriftMonitor, model: Model, dataset: Dataset | None) -> Baseline | None:
    """The baseline, or None while the Dataset has no ready version (profile)."""
    status = dataset.status if dataset is not None else None
    if dataset is None or status is None or not status.version or not status.profile_uri:
        return None
    serving, wanted = serving_dataset_version(model)
    name = dataset.name
    if name == model.spec.dataset_ref.name and wanted:
        found = next((v for v in status.versions if v.version == wanted), None)
        if found is not None:
            return Baseline(dataset=name, version=wanted, profile_uri=found.profile_uri, serving_version=serving)
        why = (
            f"the profile of dataset version {wanted[:12]}, which serving version {serving} was trained on, is no "
            f"longer in Dataset {name}'s status.versions; comparing with the latest version {status.version[:12]}"
        )
    elif name != model.spec.dataset_ref.name:
        why = f"spec.datasetRef names Dataset {name}, not the Model's: comparing with its latest version"
    elif serving is None:
        why = f"Model {model.name} serves no version yet: comparing with the latest version {status.version[:12]}"
    else:
        why = f"serving version {serving} has no dataset version on record: comparing with the latest version"
    if wanted == status.version:
        why = ""  # the serving version's dataset version is the latest: nothing to explain
    return Baseline(
        dataset=name,
        version=status.version,
        profile_uri=status.profile_uri,
        serving_version=serving,
        message=why or None,
    )


__all__ = ["choose", "dataset_name", "serving_dataset_version"]
