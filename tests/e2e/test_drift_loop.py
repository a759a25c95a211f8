"""The drift loop on the local cluster: a served model receives reference traffic, then a shifted
distribution; its DriftMonitor reports no drift, then drift, and asks for a retrain. The Dataset's
source (scikit-learn's bundled table) has no rows the serving version has not seen, so the Model answers
NoNewData: no training Job starts (a retrain on the same rows could not beat its champion), once within
the cooldown. Real server, real collection to the store, real drift Jobs."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from mlops_operator import contracts
from mlops_operator.api.v1alpha1 import Dataset, DriftMonitor, Model
from tests.e2e.test_model_lifecycle import ATTEMPTS, EVERY, predict, records, serving_version
from tests.integration.reconcile_harness import Cluster, eventually, monitor_spec, resource

pytestmark = [pytest.mark.e2e, pytest.mark.slow]



class Traffic:
    """Sends batches of rows to the model in the background; `rows` can be swapped while it runs."""

    def __init__(self, c: Cluster, service: str, rows: list[dict[str, float]]) -> None:
        self.c, self.service, self.rows = c, service, rows
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                predict(self.c, self.service, self.rows)
                self.sent += len(self.rows)
            except OSError:
                pass  # counted by the lifecycle test; here only the data matters
            time.sleep(0.2)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)


def shifted(rows: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v * 3.0 + 1.0 for k, v in row.items()} for row in rows]


def verdict(c: Cluster, wanted: str) -> dict[str, Any] | None:
    status = c.status("DriftMonitor", "watch")
    return status if status.get("lastVerdict") == wanted else None


def serve_breast_cancer_classifier(c: Cluster, **model_spec: Any) -> None:
    """The Dataset `cancer` and Model `clf` (LogisticRegression, collection flushed every 2 s), waited
    for until v1 serves; model_spec adds fields to the Model's spec."""
    c.create(
        resource(Dataset, "cancer", {"source": {"uri": "sklearn://breast_cancer"}, "schema": {"target": "target"}})
    )
    c.create(
        resource(
            Model,
            "clf",
            {
                "datasetRef": {"name": "cancer"},
                "trainer": {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 2000}},
                "validation": {"metric": "accuracy", "threshold": 0.8, "mustBeatChampion": False},
                "serving": {"collection": {"flushIntervalSeconds": 2, "flushRows": 200}},
                **model_spec,
            },
        )
    )
    eventually(lambda: serving_version(c, "clf") == 1, what="serving v1", every=EVERY, attempts=ATTEMPTS)


def test_reference_then_shifted_traffic_drifts_and_no_new_data_trains_nothing(live: Cluster) -> None:
    c = live
    serve_breast_cancer_classifier(c, retrain={"cooldownSeconds": 0})
    # ask the Model at once; the Dataset refresh path is covered by the integration tests
    action = {"retrain": True, "cooldownSeconds": 3600, "refreshDataset": False}
    spec = monitor_spec("clf", 20, windowSeconds=40, minSamples=50, action=action)
    c.create(resource(DriftMonitor, "watch", spec))

    # every row of the reference, so each request's rows follow the reference distribution exactly
    # (repeating a 100-row subset thousands of times is itself a drift a KS test rightly finds)
    reference = records(569)
    with Traffic(c, "clf", reference) as traffic:
        eventually(lambda: verdict(c, "NoDrift"), what="a NoDrift check on reference traffic", every=2, attempts=300)
        traffic.rows = shifted(reference)
        drifted = eventually(
            lambda: verdict(c, "Drift"), what="a Drift check on shifted traffic", every=2, attempts=300
        )
    assert drifted["driftedShare"] > 0.5 and drifted["reportUri"]
    annotation = eventually(
        lambda: c.get("Model", "clf")["metadata"].get("annotations", {}).get(contracts.ANNOTATION_RETRAIN_REQUESTED),
        what="retrain request",
    )
    assert ";drift: " in annotation
    eventually(
        lambda: (c.condition("Model", "clf", "Trained") or {}).get("reason") == "NoNewData",
        what="NoNewData on the Model",
        every=1,
        attempts=120,
    )
    eventually(lambda: any(r == "NoNewData" for r, _ in c.events("clf")), what="a NoNewData Event on the Model")
    assert len(c.model_jobs("clf")) == 1

    # more drifting checks within the cooldown ask for nothing more (history is bounded, so count
    # checks by their time, not by the history's length)
    last = c.status("DriftMonitor", "watch")["lastCheck"]
    with Traffic(c, "clf", shifted(reference)):
        eventually(
            lambda: sum(h["time"] > last for h in c.status("DriftMonitor", "watch")["history"]) >= 2,
            what="two more checks",
            every=2,
            attempts=300,
        )
    assert len(c.model_jobs("clf")) == 1
    assert c.get("Model", "clf")["metadata"]["annotations"][contracts.ANNOTATION_RETRAIN_REQUESTED] == annotation
