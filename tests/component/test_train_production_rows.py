"""Learning from production labels (spec.retrain.productionLabels), run for real: `train` on a
profiled snapshot of an old concept, with the rows a server collected under a new concept (Parquet
hour partitions with prediction ids) and the labels that arrived later (day partitions), including
a torn file, a label for an unknown id and a row that does not fit the schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops_operator import contracts, store
from mlops_operator.api.plans import TrainingPlan
from mlops_operator.api.results import ProfileResult, TrainResult
from mlops_operator.workloads import profile
from mlops_operator.workloads.artifacts import LINEAGE_FILE, MODEL_FILE

from .conftest import profile_plan, run_train, training_plan
from .test_train_gate import concept

START = datetime(2026, 11, 20, tzinfo=UTC)
END = START + timedelta(days=7)
LABELLED_AT = END - timedelta(days=1)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("production")
    root = (directory / "store").as_uri()
    old = concept(600, seed=5, shifted=False)
    path = directory / "old.csv"
    old.to_csv(path, index=False)
    profiled = profile.profile(profile_plan(root, path.as_uri()))
    collected_dir = Path(contracts.collected_prefix(root, "ns", "m").removeprefix("file://"))
    labels_dir = Path(contracts.labels_prefix(root, "ns", "m").removeprefix("file://"))
    new = concept(900, seed=77, shifted=True)
    stamps = [START + timedelta(hours=1 + i % 100, seconds=i) for i in range(len(new))]
    rows = new.drop(columns=["target"])
    rows[contracts.COLLECT_ID_COLUMN] = [f"p{i}" for i in range(len(new))]
    rows[contracts.COLLECT_TIME_COLUMN] = pd.to_datetime(stamps, utc=True)
    rows[contracts.COLLECT_PREDICTION_COLUMN] = "no"
    rows.loc[0, "x0"] = None  # a missing value is fine (imputed)
    rows["x3"] = rows["x3"].astype(object)
    rows.loc[1, "x3"] = "not a number"  # does not fit the schema: dropped, counted
    for hour, part in rows.groupby(rows[contracts.COLLECT_TIME_COLUMN].dt.floor("h")):
        target = collected_dir / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}"
        target.mkdir(parents=True, exist_ok=True)
        part = part.assign(x3=part["x3"].astype(str))
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), target / "part.parquet")
    (collected_dir / f"date={START:%Y-%m-%d}" / "hour=02" / "torn.parquet").write_bytes(b"PAR1 not parquet")
    day = labels_dir / f"date={LABELLED_AT:%Y-%m-%d}"
    day.mkdir(parents=True)
    ids = [f"p{i}" for i in range(len(new))] + ["someone-else"]
    table = pa.table(
        {
            contracts.LABEL_ID_COLUMN: ids,
            contracts.LABEL_VALUE_COLUMN: [*new["target"], "yes"],
            contracts.LABEL_TIME_COLUMN: pa.array([LABELLED_AT] * len(ids), type=pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(table, day / "labels.parquet")
    return {"root": root, "profiled": profiled, "new": new}


def _production(root: str, **fields: Any) -> dict[str, Any]:
    return {
        "collectedPrefix": contracts.collected_prefix(root, "ns", "m"),
        "labelsPrefix": contracts.labels_prefix(root, "ns", "m"),
        "windowStart": START.isoformat(),
        "windowEnd": END.isoformat(),
        **fields,
    }


def _plan(scene: dict[str, Any], version: int, **fields: Any) -> TrainingPlan:
    profiled: ProfileResult = scene["profiled"]
    return training_plan(profiled, scene["root"], version=version, **fields)


def test_a_retrain_with_only_new_labels_trains_on_them_and_records_them_in_the_lineage(
    scene: dict[str, Any], termination_log: Path
) -> None:
    v1 = run_train(_plan(scene, 1), termination_log)
    assert v1.exit_code == 0, v1.result
    champion = TrainResult.model_validate(v1.result)
    production = _production(scene["root"], newSince=(LABELLED_AT - timedelta(hours=1)).isoformat(), requireNew=True)
    plan = _plan(
        scene,
        2,
        production=production,
        champion={"version": 1, "artifactUri": champion.artifact_uri, "sha256": champion.sha256},
    )
    run = run_train(plan, termination_log)
    assert run.exit_code == 0, run.result
    result = TrainResult.model_validate(run.result)
    assert (result.rows_train or 0) + (result.rows_test or 0) == 600 + 899  # one production row did not fit
    record = json.loads(store.read_bytes(store.join(plan.output_dir, LINEAGE_FILE)))["productionRows"]
    assert (record["collected"], record["labelled"], record["invalid"], record["rows"], record["new"]) == (
        900,
        900,
        1,
        899,
        899,
    )
    assert record["window"] == {"start": START.isoformat(), "end": END.isoformat()}
    assert record["files"] == 102 and len(record["filesSha256"]) == 64  # 100 hours + the torn file + labels
    assert "torn.parquet" in record["skippedFiles"]
    # The gate: both on the held-out rows v1 never trained on, most of them today's concept.
    gate = result.gate_split
    assert gate is not None and gate.overlap_checked and gate.metrics and gate.champion_metrics
    assert gate.metrics["accuracy"] > gate.champion_metrics["accuracy"] + 0.1


def test_without_a_label_since_the_champion_it_ends_with_no_new_data_before_fitting(
    scene: dict[str, Any], termination_log: Path
) -> None:
    production = _production(scene["root"], newSince=(LABELLED_AT + timedelta(minutes=1)).isoformat(), requireNew=True)
    plan = _plan(scene, 3, production=production)
    run = run_train(plan, termination_log)
    assert run.exit_code == contracts.ExitCode.DATA_ERROR
    assert run.result["reason"] == "NoNewData" and "no labelled production row arrived since" in run.result["error"]
    assert not store.exists(store.join(plan.output_dir, MODEL_FILE))
    # Not required to be new (a dataset change, a person's request): the same rows train.
    plan = _plan(scene, 4, production={**production, "requireNew": False})
    run = run_train(plan, termination_log)
    assert run.exit_code == 0, run.result
    record = json.loads(store.read_bytes(store.join(plan.output_dir, LINEAGE_FILE)))["productionRows"]
    assert (record["rows"], record["new"]) == (899, 0)


def test_without_production_rows_the_lineage_says_none(scene: dict[str, Any], termination_log: Path) -> None:
    plan = _plan(scene, 5)
    run = run_train(plan, termination_log)
    assert run.exit_code == 0, run.result
    assert json.loads(store.read_bytes(store.join(plan.output_dir, LINEAGE_FILE)))["productionRows"] is None
    result = TrainResult.model_validate(run.result)
    assert (result.rows_train or 0) + (result.rows_test or 0) == 600
