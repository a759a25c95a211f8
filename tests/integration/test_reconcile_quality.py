"""Live quality and refresh-then-retrain on a real kube-apiserver: a quality trigger asks the Dataset to
refresh; no new data is NoNewData (on the monitor and the Model, no training); new data retrains. A
monitor that asks the Model directly meets the Model's own NoNewData, and a person's request retrains."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops_operator import contracts
from mlops_operator.api.results import DriftResult, LiveQualityResult
from mlops_operator.api.v1alpha1 import DriftMonitor
from mlops_operator.api.v1alpha1.rollout import ShadowLiveQuality
from mlops_operator.metrics import Metrics
from tests.integration.reconcile_harness import Cluster, eventually, resource
from tests.integration.test_reconcile_model import (
    VERSION_A,
    VERSION_B,
    profile_result,
    serving_first_version,
    training_job,
)

pytestmark = pytest.mark.integration
REFRESH = f"{contracts.GROUP}/refresh-requested"


def check_result(
    verdict: str = "NoDrift", accuracy: float | None = None, labelled: int = 40, shadow: ShadowLiveQuality | None = None
) -> str:
    quality = (
        LiveQualityResult(
            metric="accuracy", value=accuracy, labelled=labelled, predictions=200, late=3, unknown=1, shadow=shadow
        )
        if accuracy is not None
        else None
    )
    drifted = ["petal_width"] if verdict == "Drift" else []
    return DriftResult(
        ok=True, verdict=verdict, samples=500, drifted_share=0.5 if drifted else 0.0, drifted_features=drifted,
        report_uri="file:///r/report.html", quality=quality,
    ).model_dump_json(by_alias=True, exclude_none=True)


def drift_job(c: Cluster, monitor: str, done: list[str]) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        found = c.jobs(**{contracts.LABEL_DRIFT_MONITOR: monitor, contracts.LABEL_COMPONENT: "drift"})
        return next((j for j in found if j["metadata"]["name"] not in done), None)

    job = eventually(find, what="the next drift Job", attempts=300)
    done.append(job["metadata"]["name"])
    return job


def refresh_job(c: Cluster, seen: set[str]) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        found = c.jobs(**{contracts.LABEL_DATASET: "iris"})
        return next((j for j in found if j["metadata"]["name"] not in seen), None)

    job = eventually(find, what="the Dataset's refresh profile Job", attempts=300)
    seen.add(job["metadata"]["name"])
    return job


def condition(c: Cluster, name: str, reason: str) -> dict[str, Any] | None:
    found = c.condition("DriftMonitor", name, "RetrainRequested")
    return found if found is not None and found["reason"] == reason else None


def test_quality_decay_refreshes_first_no_new_data_then_new_data_retrains(running: tuple[Cluster, Metrics]) -> None:
    c, metrics = running
    serving_first_version(c, "clf", retrain={"cooldownSeconds": 0})
    seen = {j["metadata"]["name"] for j in c.jobs(**{contracts.LABEL_DATASET: "iris"})}
    spec = {
        "modelRef": {"name": "clf"},
        "schedule": {"intervalSeconds": 10},
        "qualityWindowSeconds": 86400,
        "triggers": {"performance": {"threshold": 0.9, "minLabels": 20}},
        "action": {"cooldownSeconds": 0},
    }
    c.create(resource(DriftMonitor, "quality", spec))
    done: list[str] = []
    first = drift_job(c, "quality", done)
    plan = json.loads(first["spec"]["template"]["spec"]["containers"][0]["args"][2])
    assert plan["profileUri"] == f"file:///var/lib/mlops/p/{VERSION_A}/profile.json"  # the serving version's data
    assert plan["quality"]["labelsPrefix"].endswith(f"/{c.ns}/labels/clf") and plan["quality"]["metric"] == "accuracy"
    assert plan["quality"]["task"] == "classification" and "predictionDrift" in plan
    # a Shadow rollout's recorded rows are read beside the labels, and pruned with them
    assert plan["quality"]["shadowPrefix"].endswith(f"/{c.ns}/shadow/clf")
    assert plan["quality"]["shadowPrefix"] in plan["retention"]["partitionPrefixes"]

    # too few labels: no verdict, no action; a shadowed candidate's scores land in status as reported
    shadow = ShadowLiveQuality(
        version="2", champion_version="1", metric="accuracy", value=0.8, champion_value=0.6, labelled=5,
        predictions=60, metrics={"accuracy": 0.8, "f1": 0.75}, champion_metrics={"accuracy": 0.6, "f1": 0.5},
        message="3 recorded rows of an earlier candidate left out",
    )
    c.finish_job(first, message=check_result(accuracy=0.5, labelled=5, shadow=shadow))
    live = eventually(lambda: c.status("DriftMonitor", "quality").get("liveQuality"), what="live quality in status")
    assert ShadowLiveQuality.model_validate(live["shadow"]) == shadow
    assert REFRESH not in (c.get("Dataset", "iris")["metadata"].get("annotations") or {})

    # decayed with enough labels: the Dataset is asked to refresh first, nothing is asked of the Model
    c.finish_job(drift_job(c, "quality", done), message=check_result(accuracy=0.7))
    request = eventually(
        lambda: (c.get("Dataset", "iris")["metadata"].get("annotations") or {}).get(REFRESH), what="refresh request"
    )
    assert request.endswith(";quality: accuracy 0.7 < 0.9 on 40 labelled predictions")
    assert eventually(lambda: condition(c, "quality", "RefreshPending"), what="RefreshPending")
    status = c.status("DriftMonitor", "quality")
    assert status["fired"] == ["performance"] and status["baseline"]["version"] == VERSION_A
    assert status["liveQuality"]["value"] == 0.7 and status["history"][-1]["quality"] == 0.7
    gauge = {"namespace": c.ns, "monitor": "quality", "model": "clf", "metric": "accuracy"}
    assert eventually(lambda: metrics.registry.get_sample_value("mlops_live_quality", gauge), what="gauge") == 0.7

    # the source has not changed: NoNewData, on the monitor and on the Model, and no training
    c.finish_job(refresh_job(c, seen), message=profile_result(VERSION_A))
    no_data = eventually(lambda: condition(c, "quality", "NoNewData"), what="NoNewData on the monitor")
    assert no_data["status"] == "False"
    eventually(lambda: any(r == "NoNewData" for r, _ in c.events("clf")), what="NoNewData Event on the Model")
    assert contracts.ANNOTATION_RETRAIN_REQUESTED not in (c.get("Model", "clf")["metadata"].get("annotations") or {})
    assert len(c.model_jobs("clf")) == 1

    # still decayed at the next check; this time the refresh brings a new version: the Model retrains on it
    c.finish_job(drift_job(c, "quality", done), message=check_result(accuracy=0.6))
    eventually(
        lambda: (c.get("Dataset", "iris")["metadata"].get("annotations") or {}).get(REFRESH) != request,
        what="a second refresh request",
    )
    c.finish_job(refresh_job(c, seen), message=profile_result(VERSION_B))
    retrain = training_job(c, "clf", 2)
    assert retrain["metadata"]["annotations"][contracts.ANNOTATION_TRIGGER] == f"dataset version {VERSION_B[:12]}"
    assert eventually(lambda: condition(c, "quality", "NewData"), what="NewData on the monitor")


def test_a_direct_drift_request_on_the_same_data_is_no_new_data_on_the_model(running: tuple[Cluster, Metrics]) -> None:
    c, _ = running
    serving_first_version(c, "direct", retrain={"cooldownSeconds": 0})
    spec = {"modelRef": {"name": "direct"}, "schedule": {"intervalSeconds": 10}, "action": {"refreshDataset": False}}
    c.create(resource(DriftMonitor, "direct", spec))
    c.finish_job(drift_job(c, "direct", []), message=check_result("Drift"))
    annotation = eventually(
        lambda: c.get("Model", "direct")["metadata"].get("annotations", {}).get(contracts.ANNOTATION_RETRAIN_REQUESTED),
        what="retrain request on the Model",
    )
    assert annotation.endswith(";drift: petal_width")
    trained = eventually(
        lambda: (t := c.condition("Model", "direct", "Trained")) and t["reason"] == "NoNewData" and t,
        what="Trained: NoNewData",
    )
    assert trained["status"] == "True" and "cannot help" in trained["message"]
    assert c.status("Model", "direct")["handledRetrainRequest"] == annotation
    assert len(c.model_jobs("direct")) == 1

    # a person's request is explicit: it retrains on the same data
    manual = {contracts.ANNOTATION_RETRAIN_REQUESTED: "2099-01-01T00:00:00Z;manual"}
    c.patch("Model", "direct", {"metadata": {"annotations": manual}})
    job = training_job(c, "direct", 2)
    assert job["metadata"]["annotations"][contracts.ANNOTATION_TRIGGER] == "retrain: manual"
