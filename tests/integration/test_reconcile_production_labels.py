"""Learning from production labels on a real kube-apiserver, with the real workloads: the Dataset's
profile Job and every training Job are run in this process on the plan the operator rendered (their
`--spec`), against a store in a temporary directory, and finished with the workload's own result.

A Model with spec.retrain.productionLabels serves v1 (trained on an old concept). The server's
collected rows of a new concept and their labels arrive in the store; a DriftMonitor-style quality
request on the unchanged Dataset trains v2 on the labelled rows (not NoNewData), and v2's lineage
records them. A second request, with no label since v2 was trained, is answered NoNewData by its
Job before fitting: no version, the Trained condition and an Event say so. And a DriftMonitor whose
refresh finds the source unchanged asks such a Model to retrain instead of recording NoNewData itself.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kubernetes import client

from mlops_operator import contracts, store
from mlops_operator.api.base import CRModel
from mlops_operator.api.plans import ProfilePlan, TrainingPlan
from mlops_operator.api.results import TrainResult
from mlops_operator.api.v1alpha1 import Dataset, DriftMonitor, Model
from mlops_operator.metrics import Metrics
from mlops_operator.workloads import common, profile, train
from mlops_operator.workloads.artifacts import LINEAGE_FILE
from tests.component.test_train_gate import concept
from tests.integration import apiserver
from tests.integration.reconcile_harness import Cluster, eventually, operator, resource
from tests.integration.test_reconcile_model import (
    VERSION_A,
    model_spec,
    profile_result,
    serving_first_version,
    training_job,
    version_state,
)
from tests.integration.test_reconcile_quality import check_result, condition, drift_job, refresh_job

pytestmark = pytest.mark.integration
MODEL = "clf"


@pytest.fixture
def world(
    api_client: client.ApiClient, namespace: str, current_crds: None, apiserver_instance: apiserver.ApiServer
) -> Iterator[tuple[Cluster, Path]]:
    """The operator with its store in a directory this test reads and writes too."""
    with tempfile.TemporaryDirectory(prefix="mlops-it-production-") as directory:
        root = Path(directory)
        settings = {"store_uri": (root / "store").as_uri(), "store_claim": "mlops-artifacts"}
        with operator(apiserver_instance.kubeconfig, namespace, **settings):
            yield Cluster(api_client, namespace), root


def _plan_of(job: dict[str, Any], kind: type[CRModel]) -> Any:
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    return kind.model_validate_json(args[args.index(contracts.PLAN_FLAG) + 1])


def _run_for_real(c: Cluster, job: dict[str, Any], plan: TrainingPlan) -> TrainResult:
    """Play kubelet: the real training workload on the Job's own plan, its result as the pod's."""
    try:
        result = train.train(plan)
        c.finish_job(job, message=result.model_dump_json(by_alias=True, exclude_none=True))
    except common.WorkloadError as error:
        result = train.failed_result(error)
        message = result.model_dump_json(by_alias=True, exclude_none=True)
        c.finish_job(job, message=message, exit_code=error.exit_code, job_reason="PodFailurePolicy")
    return result


def _serving_v1(c: Cluster, root: Path) -> None:
    source = root / "store" / c.ns / "sources" / "old.csv"  # on the claim, mounted at STORE_MOUNT_PATH
    source.parent.mkdir(parents=True)
    concept(600, seed=5, shifted=False).to_csv(source, index=False)
    uri = f"file://{contracts.STORE_MOUNT_PATH}/{c.ns}/sources/old.csv"
    c.create(resource(Dataset, "iris", {"source": {"uri": uri}, "schema": {"target": "target"}}))
    job = eventually(lambda: (c.jobs(**{contracts.LABEL_DATASET: "iris"}) or [None])[0], what="profile Job")
    profiled = profile.profile(_mounted(_plan_of(job, ProfilePlan), root))
    c.finish_job(job, message=profiled.model_dump_json(by_alias=True, exclude_none=True))
    eventually(lambda: c.status("Dataset", "iris").get("version") == profiled.version, what="dataset version")
    spec = model_spec(
        validation={"metric": "accuracy", "threshold": 0.6},
        retrain={"cooldownSeconds": 0, "productionLabels": {"enabled": True, "windowSeconds": 86400}},
    )
    c.create(resource(Model, MODEL, spec))
    first = training_job(c, MODEL, 1)
    assert _plan_of(first, TrainingPlan).production is not None  # every training reads them when enabled
    assert _run_for_real(c, first, _plan_of(first, TrainingPlan)).ok
    _serve(c, 1)


def _mounted(plan: ProfilePlan, root: Path) -> ProfilePlan:
    """The plan as the pod reads it: the claim (the store's directory) is mounted at STORE_MOUNT_PATH."""
    source = plan.spec.source
    uri = source.uri.replace(f"file://{contracts.STORE_MOUNT_PATH}", (root / "store").as_uri(), 1)
    spec = plan.spec.model_copy(update={"source": source.model_copy(update={"uri": uri})})
    return plan.model_copy(update={"spec": spec})


def _serve(c: Cluster, version: int) -> None:
    eventually(lambda: c.served_version(f"{MODEL}-server") == str(version), what=f"Deployment of v{version}")
    c.roll_out(f"{MODEL}-server")
    eventually(lambda: c.status("Model", MODEL).get("servingVersion") == version, what=f"serving v{version}")


def _production_arrives(root: Path, c: Cluster, labelled_at: datetime) -> int:
    """The server's collected rows of a new concept (one hour partition per hour, with ids, predicted
    three hours before `labelled_at`) and their labels (one day partition); returns how many."""
    store_uri = (root / "store").as_uri()
    collected = Path(contracts.collected_prefix(store_uri, c.ns, MODEL).removeprefix("file://"))
    labels = Path(contracts.labels_prefix(store_uri, c.ns, MODEL).removeprefix("file://"))
    new = concept(900, seed=77, shifted=True)
    now = labelled_at
    rows = new.drop(columns=["target"])
    rows[contracts.COLLECT_ID_COLUMN] = [f"p{i}" for i in range(len(new))]
    rows[contracts.COLLECT_TIME_COLUMN] = pd.to_datetime([now - timedelta(hours=3, seconds=i) for i in range(len(new))])
    for hour, part in rows.groupby(rows[contracts.COLLECT_TIME_COLUMN].dt.floor("h")):
        directory = collected / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}"
        directory.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), directory / "part.parquet")
    day = labels / f"date={now:%Y-%m-%d}"
    day.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            contracts.LABEL_ID_COLUMN: rows[contracts.COLLECT_ID_COLUMN].tolist(),
            contracts.LABEL_VALUE_COLUMN: new["target"].tolist(),
            contracts.LABEL_TIME_COLUMN: pa.array([now] * len(new), type=pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(table, day / "labels.parquet")
    return len(new)


def _request(c: Cluster, when: str) -> None:
    value = f"{when};quality: accuracy 0.62 < 0.8 on 900 labelled predictions"
    c.patch("Model", MODEL, {"metadata": {"annotations": {contracts.ANNOTATION_RETRAIN_REQUESTED: value}}})


def test_a_retrain_with_only_new_labels_trains_records_them_and_none_new_is_no_new_data(
    world: tuple[Cluster, Path],
) -> None:
    c, root = world
    _serving_v1(c, root)
    # Labels stamped when v1's Job was created (newSince: they are new to v1) and read by a request
    # made in a later second (the window ends at the operator's clock, in whole seconds).
    labelled_at = datetime.fromisoformat(c.status("Model", MODEL)["versions"][0]["createdAt"])
    labelled = _production_arrives(root, c, labelled_at)
    eventually(lambda: datetime.now(UTC) >= labelled_at + timedelta(seconds=1), what="a later second")

    # The Dataset is unchanged; labels arrived since v1 trained: the request trains v2 on them.
    _request(c, "2026-12-01T10:00:00Z")
    second = training_job(c, MODEL, 2)
    plan = _plan_of(second, TrainingPlan)
    assert plan.production is not None and plan.production.require_new and plan.production.new_since is not None
    assert "new production labels" in plan.trigger
    result = _run_for_real(c, second, plan)
    assert result.ok, result
    lineage = json.loads(store.read_bytes(store.join(plan.output_dir, LINEAGE_FILE)))
    used = lineage["productionRows"]
    assert (used["labelled"], used["rows"], used["new"], used["invalid"]) == (labelled, labelled, labelled, 0)
    assert used["window"]["end"] == plan.production.window_end.isoformat() and len(used["filesSha256"]) == 64
    assert (result.rows_train or 0) + (result.rows_test or 0) == 600 + labelled
    eventually(lambda: version_state(c, MODEL, 2) in ("Validated", "Approved", "Serving"), what="v2 passes the gate")
    _serve(c, 2)

    # Nothing labelled since v2 trained: its Job answers NoNewData before fitting; no version 3.
    _request(c, "2026-12-01T11:00:00Z")
    third = training_job(c, MODEL, 3)
    answer = _run_for_real(c, third, _plan_of(third, TrainingPlan))
    assert (answer.ok, answer.reason) == (False, "NoNewData")
    trained = eventually(
        lambda: (t := c.condition("Model", MODEL, "Trained")) and t["reason"] == "NoNewData" and t, what="NoNewData"
    )
    assert trained["status"] == "True" and "no labelled production row arrived since" in trained["message"]
    assert eventually(lambda: any(r == "NoNewData" for r, _ in c.events(MODEL)), what="the NoNewData Event")
    status = c.status("Model", MODEL)
    assert [v["version"] for v in status["versions"]] == [1, 2] and status["servingVersion"] == 2


def test_a_monitors_quality_alert_on_unchanged_data_asks_a_model_that_learns_from_labels_to_retrain(
    running: tuple[Cluster, Metrics],
) -> None:
    """The DriftMonitor's side: after an Unchanged refresh it writes the retrain request (not its own
    NoNewData) for such a Model, whose labels-only Job then decides."""
    c, _ = running
    retrain = {"cooldownSeconds": 0, "productionLabels": {"enabled": True}}
    serving_first_version(c, MODEL, retrain=retrain)
    seen = {j["metadata"]["name"] for j in c.jobs(**{contracts.LABEL_DATASET: "iris"})}
    spec = {
        "modelRef": {"name": MODEL},
        "schedule": {"intervalSeconds": 10},
        "triggers": {"performance": {"threshold": 0.9, "minLabels": 20}},
        "action": {"cooldownSeconds": 0},
    }
    c.create(resource(DriftMonitor, "quality", spec))
    c.finish_job(drift_job(c, "quality", []), message=check_result(accuracy=0.7))
    c.finish_job(refresh_job(c, seen), message=profile_result(VERSION_A))  # the source has not changed
    annotation = eventually(
        lambda: c.get("Model", MODEL)["metadata"].get("annotations", {}).get(contracts.ANNOTATION_RETRAIN_REQUESTED),
        what="the retrain request on the Model",
    )
    assert annotation.endswith(";quality: accuracy 0.7 < 0.9 on 40 labelled predictions")
    assert eventually(lambda: condition(c, "quality", "RetrainRequested"), what="RetrainRequested on the monitor")
    plan = _plan_of(training_job(c, MODEL, 2), TrainingPlan)
    assert plan.production is not None and plan.production.require_new and plan.dataset_version == VERSION_A
