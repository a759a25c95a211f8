"""Every sample in manifests/samples is a valid resource for the pydantic models (and so the CRDs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator import contracts
from mlops_operator.api.base import Resource
from mlops_operator.api.v1alpha1 import ALL_KINDS, Dataset, DriftMonitor, Model
from mlops_operator.api.v1alpha1.model import ApprovalPolicy

SAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "samples"
KINDS: dict[str, type[Resource]] = {cls.crd.kind: cls for cls in ALL_KINDS}


def load_samples() -> dict[str, Resource]:
    parsed: dict[str, Resource] = {}
    for path in sorted(SAMPLES.glob("*.yaml")):
        for body in yaml.safe_load_all(path.read_text()):
            assert body["apiVersion"] == contracts.API_VERSION, path
            assert "namespace" not in body["metadata"], f"{path}: samples are applied with -n"
            parsed[f"{path.name}:{body['metadata']['name']}"] = KINDS[body["kind"]].model_validate(body)
    return parsed


@pytest.fixture(scope="module")
def samples() -> dict[str, Resource]:
    return load_samples()


def of_kind(samples: dict[str, Resource], cls: type[Any]) -> list[Any]:
    return [s for s in samples.values() if isinstance(s, cls)]


def test_every_sample_parses(samples: dict[str, Resource]) -> None:
    files = {p.name for p in SAMPLES.glob("*.yaml")}
    assert files == {"dataset.yaml", "model-automatic.yaml", "model-manual.yaml", "driftmonitor.yaml"}
    assert {k.split(":")[0] for k in samples} == files


def test_the_dataset_is_the_bundled_breast_cancer_table(samples: dict[str, Resource]) -> None:
    (dataset,) = of_kind(samples, Dataset)
    assert dataset.spec.source.uri == "sklearn://breast_cancer"
    assert dataset.spec.schema_.target == "target"


def test_there_is_a_model_per_approval_policy_on_that_dataset(samples: dict[str, Resource]) -> None:
    models = of_kind(samples, Model)
    (dataset,) = of_kind(samples, Dataset)
    assert {m.spec.approval.policy for m in models} == {ApprovalPolicy.AUTOMATIC, ApprovalPolicy.MANUAL}
    assert {m.spec.dataset_ref.name for m in models} == {dataset.name}
    automatic = next(m for m in models if m.spec.approval.policy == ApprovalPolicy.AUTOMATIC)
    assert automatic.spec.trainer.estimator == "sklearn.linear_model.LogisticRegression"
    assert automatic.spec.validation.threshold == 0.9 and automatic.spec.validation.must_beat_champion
    manual = next(m for m in models if m.spec.approval.policy == ApprovalPolicy.MANUAL)
    assert manual.spec.trainer.estimator == "sklearn.ensemble.RandomForestClassifier"
    assert manual.spec.approved_version is None


def test_the_drift_monitor_watches_the_automatic_model(samples: dict[str, Resource]) -> None:
    (monitor,) = of_kind(samples, DriftMonitor)
    automatic = next(m for m in of_kind(samples, Model) if m.spec.approval.policy == ApprovalPolicy.AUTOMATIC)
    assert monitor.spec.model_ref.name == automatic.name
    assert monitor.spec.schedule.interval_seconds == 60
    assert (monitor.spec.window_seconds, monitor.spec.min_samples) == (600, 50)
    assert monitor.spec.action.retrain and monitor.spec.action.cooldown_seconds == 600


def test_a_broken_sample_would_be_caught(tmp_path: Path) -> None:
    body = yaml.safe_load((SAMPLES / "model-manual.yaml").read_text())
    body["spec"]["validation"]["metric"] = "r2"  # a regression metric on a classification task
    with pytest.raises(ValueError, match="does not fit task"):
        Model.model_validate(body)
