"""The batch-score workload on real files: shards of a real Parquet input, a real trained pipeline saved
as the trainer saves it, its sha256 checked; the parts put together equal `pipeline.predict`.

"Retried alone" is the Indexed Job's contract as the workload sees it: every index runs on its own with
the same plan, so a failed index run again replaces only its own part and leaves the others as they were.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from mlops_operator import contracts, store
from mlops_operator.api.batch import BatchScorePlan
from mlops_operator.workloads import artifacts, batch_score, train
from tests.component.conftest import CONSOLE_SCRIPT, run_cli, run_main, synthetic_frame

Scoring = tuple[BatchScorePlan, pd.DataFrame, Pipeline]
FEATURES = ["x0", "x1", "x2", "x3", "x4", "x5", "c0", "c1"]


def trained(frame: pd.DataFrame) -> Pipeline:
    pipeline = train.build_pipeline(LogisticRegression(max_iter=500), FEATURES[:6], FEATURES[6:])
    pipeline.fit(frame[FEATURES], frame["target"])
    return pipeline


@pytest.fixture
def scoring(tmp_path: Path, store_root: str) -> tuple[BatchScorePlan, pd.DataFrame, Pipeline]:
    """A model saved like the trainer saves it, and 23,456 input rows in 3 Parquet files of 1,000-row groups."""
    pipeline = trained(synthetic_frame(2000, seed=1))
    artifact = contracts.model_artifact_uri(store_root, "ns", "m", 3)
    data = artifacts.dump_model(pipeline)
    store.write_bytes_atomic(artifact, data)
    rows = synthetic_frame(23_456, seed=2).drop(columns=["target"])
    rows.insert(0, "customer", [f"c{i:06d}" for i in range(len(rows))])
    inputs = tmp_path / "store" / "ns" / "inputs"
    inputs.mkdir(parents=True)
    for n, bounds in enumerate([(0, 7000), (7000, 15000), (15000, len(rows))]):
        part = rows.iloc[bounds[0] : bounds[1]]
        pq.write_table(
            pa.Table.from_pandas(part, preserve_index=False), inputs / f"in-{n}.parquet", row_group_size=1000
        )
    plan = BatchScorePlan(
        namespace="ns",
        batch="nightly",
        model="m",
        version=3,
        artifact_uri=artifact,
        sha256=store.sha256_bytes(data),
        input_uri=f"{store_root}/ns/inputs/",
        shards=4,
        chunk_rows=1500,
        output_dir=contracts.batch_run_dir(store_root, "ns", "m", "nightly", "run-1"),
        store_uri=store_root,
    )
    return plan, rows, pipeline


def run_index(plan: BatchScorePlan, index: int, termination_log: Path) -> dict[str, object]:
    run = run_main(
        batch_score.main, ["--spec", plan.model_dump_json(by_alias=True), "--index", str(index)], termination_log
    )
    assert run.exit_code == 0, run.result
    return run.result


def expected(pipeline: Pipeline, rows: pd.DataFrame) -> np.ndarray:
    return np.asarray(pipeline.predict(rows[FEATURES]))


def parts(plan: BatchScorePlan) -> pd.DataFrame:
    files = sorted(Path(plan.output_dir.removeprefix("file://")).glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def test_the_shards_together_equal_predict_on_the_same_rows(scoring: Scoring, termination_log: Path) -> None:
    plan, rows, pipeline = scoring
    results = [run_index(plan, i, termination_log) for i in range(plan.shards)]
    assert [r["rows"] for r in results] == [5864, 5864, 5864, 5864]
    out = parts(plan)
    assert list(out.columns) == [
        contracts.BATCH_ROW_COLUMN,
        contracts.COLLECT_PREDICTION_COLUMN,
        contracts.COLLECT_MODEL_VERSION_COLUMN,
    ]
    assert out[contracts.BATCH_ROW_COLUMN].tolist() == list(range(len(rows)))  # every row once, in order
    assert (out[contracts.COLLECT_PREDICTION_COLUMN].to_numpy() == expected(pipeline, rows)).all()
    assert set(out[contracts.COLLECT_MODEL_VERSION_COLUMN]) == {3}


def test_key_columns_join_each_prediction_back_to_its_row(scoring: Scoring, termination_log: Path) -> None:
    plan, rows, pipeline = scoring
    plan = plan.model_copy(update={"key_columns": ["customer"], "shards": 3})
    for i in range(3):
        run_index(plan, i, termination_log)
    out = parts(plan).merge(rows, on="customer", how="inner", validate="one_to_one")
    assert len(out) == len(rows)
    assert (out[contracts.COLLECT_PREDICTION_COLUMN].to_numpy() == expected(pipeline, out)).all()


def test_a_failed_index_run_again_rewrites_only_its_own_part(scoring: Scoring, termination_log: Path) -> None:
    plan, rows, pipeline = scoring
    blocked = Path(batch_score.part_uri(plan.output_dir, 2).removeprefix("file://"))
    blocked.mkdir(parents=True)  # a directory where part 2 goes: its atomic rename fails (a store error)
    (blocked / "x").write_text("x")
    done = {}
    for i in (0, 1, 3):
        run_index(plan, i, termination_log)
        done[i] = Path(batch_score.part_uri(plan.output_dir, i).removeprefix("file://"))
    failed = run_main(
        batch_score.main, ["--spec", plan.model_dump_json(by_alias=True), "--index", "2"], termination_log
    )
    assert failed.exit_code == contracts.ExitCode.STORE_ERROR, failed.result
    assert failed.result["ok"] is False
    before = {i: (p.stat().st_mtime_ns, p.read_bytes()) for i, p in done.items()}
    shutil.rmtree(blocked)
    again = run_index(plan, 2, termination_log)  # the Job controller's retry of index 2, and only of it
    assert again["rows"] == 5864
    assert {i: (p.stat().st_mtime_ns, p.read_bytes()) for i, p in done.items()} == before
    out = parts(plan)
    assert out[contracts.BATCH_ROW_COLUMN].tolist() == list(range(len(rows)))
    assert (out[contracts.COLLECT_PREDICTION_COLUMN].to_numpy() == expected(pipeline, rows)).all()


def test_a_shard_run_twice_writes_the_same_part(scoring: Scoring, termination_log: Path) -> None:
    plan, _, _ = scoring
    run_index(plan, 1, termination_log)
    first = pd.read_parquet(batch_score.part_uri(plan.output_dir, 1).removeprefix("file://"))
    run_index(plan, 1, termination_log)
    second = pd.read_parquet(batch_score.part_uri(plan.output_dir, 1).removeprefix("file://"))
    pd.testing.assert_frame_equal(first, second)


def test_an_artifact_whose_sha256_differs_is_refused_before_any_row(scoring: Scoring, termination_log: Path) -> None:
    plan, _, _ = scoring
    plan = plan.model_copy(update={"sha256": "0" * 64})
    run = run_main(batch_score.main, ["--spec", plan.model_dump_json(by_alias=True), "--index", "0"], termination_log)
    assert run.exit_code == contracts.ExitCode.INTEGRITY_ERROR
    assert run.result["reason"] == "IntegrityError"
    assert not store.list_prefix(plan.output_dir)


def test_input_without_a_feature_is_a_data_error_naming_it(
    scoring: Scoring, tmp_path: Path, termination_log: Path
) -> None:
    plan, rows, _ = scoring
    bad = tmp_path / "store" / "ns" / "bad.parquet"
    pq.write_table(pa.Table.from_pandas(rows.drop(columns=["x3"]), preserve_index=False), bad)
    plan = plan.model_copy(update={"input_uri": bad.as_uri()})
    run = run_main(batch_score.main, ["--spec", plan.model_dump_json(by_alias=True), "--index", "0"], termination_log)
    assert run.exit_code == contracts.ExitCode.DATA_ERROR
    assert run.result["reason"] == "SchemaMismatch" and "x3" in run.result["error"]


def test_more_shards_than_rows_leaves_the_empty_shards_without_a_part(
    scoring: Scoring, tmp_path: Path, termination_log: Path
) -> None:
    plan, rows, pipeline = scoring
    few = tmp_path / "store" / "ns" / "few.parquet"
    pq.write_table(pa.Table.from_pandas(rows.head(3), preserve_index=False), few)
    plan = plan.model_copy(update={"input_uri": few.as_uri(), "shards": 5})
    counts = [int(str(run_index(plan, i, termination_log)["rows"])) for i in range(5)]
    assert sorted(counts) == [0, 0, 1, 1, 1]
    out = parts(plan)
    assert (out[contracts.COLLECT_PREDICTION_COLUMN].to_numpy() == expected(pipeline, rows.head(3))).all()


def test_the_console_script_takes_its_index_from_the_indexed_job(
    scoring: Scoring, termination_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, _, _ = scoring
    monkeypatch.setenv(contracts.ENV_JOB_COMPLETION_INDEX, "3")
    run = run_cli("batch-score", ["--spec", plan.model_dump_json(by_alias=True)], termination_log)
    assert run.exit_code == 0, run.stderr
    assert run.result["index"] == 3 and run.result["rows"] == 5864
    assert os.path.exists(batch_score.part_uri(plan.output_dir, 3).removeprefix("file://"))


@pytest.mark.slow
def test_a_million_rows_over_four_shards_one_killed_mid_run_and_rerun_alone(tmp_path: Path, store_root: str) -> None:
    """The acceptance story with real processes (each a pod of the Indexed Job): 1,000,000 rows over 4
    shards; shard 2 is SIGKILLed while it writes; its rerun (the Job controller's retry of that index)
    replaces nothing but its own part, and the 4 parts together equal `pipeline.predict` on the rows."""
    pipeline = trained(synthetic_frame(2000, seed=1))
    artifact = contracts.model_artifact_uri(store_root, "ns", "m", 1)
    data = artifacts.dump_model(pipeline)
    store.write_bytes_atomic(artifact, data)
    rows = synthetic_frame(1_000_000, seed=3).drop(columns=["target"])
    inputs = tmp_path / "store" / "ns" / "big"
    inputs.mkdir(parents=True)
    for n in range(4):
        part = rows.iloc[n * 250_000 : (n + 1) * 250_000]
        pq.write_table(
            pa.Table.from_pandas(part, preserve_index=False), inputs / f"in-{n}.parquet", row_group_size=50_000
        )
    plan = BatchScorePlan(
        namespace="ns",
        batch="big",
        model="m",
        version=1,
        artifact_uri=artifact,
        sha256=store.sha256_bytes(data),
        input_uri=f"{store_root}/ns/big/",
        shards=4,
        chunk_rows=10_000,
        output_dir=contracts.batch_run_dir(store_root, "ns", "m", "big", "run"),
        store_uri=store_root,
    )
    out = Path(plan.output_dir.removeprefix("file://"))

    def start(index: int) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            contracts.ENV_JOB_COMPLETION_INDEX: str(index),
            contracts.ENV_TERMINATION_LOG: str(tmp_path / f"term-{index}-{time.monotonic_ns()}"),
        }
        command = [str(CONSOLE_SCRIPT), "batch-score", "--spec", plan.model_dump_json(by_alias=True)]
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    pods = {i: start(i) for i in range(4)}
    deadline = time.monotonic() + 600
    while not list(out.glob(".part-00002.parquet.*.tmp")):  # shard 2 is writing: kill it now
        assert pods[2].poll() is None, "shard 2 ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pods[2].send_signal(signal.SIGKILL)
    assert pods[2].wait(60) == -signal.SIGKILL
    for i in (0, 1, 3):
        assert pods[i].wait(600) == 0
    assert not (out / "part-00002.parquet").exists()  # the killed shard left no part behind, not even half of one
    before = {i: (out / f"part-{i:05d}.parquet").stat().st_mtime_ns for i in (0, 1, 3)}
    retry = start(2)
    stdout, _ = retry.communicate(timeout=600)
    assert retry.returncode == 0 and json.loads(stdout.decode().strip().splitlines()[-1])["rows"] == 250_000
    assert {i: (out / f"part-{i:05d}.parquet").stat().st_mtime_ns for i in (0, 1, 3)} == before
    scored = pd.concat([pd.read_parquet(out / f"part-{i:05d}.parquet") for i in range(4)], ignore_index=True)
    assert scored[contracts.BATCH_ROW_COLUMN].tolist() == list(range(1_000_000))
    assert (scored[contracts.COLLECT_PREDICTION_COLUMN].to_numpy() == expected(pipeline, rows)).all()
