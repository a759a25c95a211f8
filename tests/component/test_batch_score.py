"""The batch-score workload on real files: shards of a real Parquet input, a real trained pipeline saved
as the trainer saves it, its sha256 checked; the parts put together equal `pipeline.predict`.

"Retried alone" is the Indexed Job's contract as the workload sees it: every index runs on its own with
the same plan, so a failed index run again replaces only its own part and leaves the others as they were.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

from mlops_operator import contracts, store
from mlops_operator.api.batch import BatchScorePlan
from mlops_operator.api.v1alpha1.dataset import FeatureType
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


def scoring_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("batch-read", "batch-write"))]


def leftovers(plan: BatchScorePlan) -> list[str]:
    """Whatever a failed shard left in the output directory (a part or a temporary file)."""
    out = Path(plan.output_dir.removeprefix("file://"))
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def test_text_read_as_a_dictionary_converts_like_plain_text(tmp_path: Path) -> None:
    """The dictionary read gives the model the same values as plain text (str objects, NaN for
    missing), with one object per distinct value shared by its rows."""
    path = tmp_path / "text.parquet"
    values = ["red", None, "green", "red", "ünïcode", "", "red", None, "never seen in training"] * 500
    pq.write_table(pa.table({"c0": pa.array(values), "c1": pa.array(values, pa.large_string())}), path)
    schema = [artifacts.InputFeature(name, FeatureType.CATEGORICAL) for name in ("c0", "c1")]
    plain = next(pq.ParquetFile(path).iter_batches(batch_size=len(values)))
    encoded = next(pq.ParquetFile(path, read_dictionary=["c0", "c1"]).iter_batches(batch_size=len(values)))
    assert pa.types.is_dictionary(encoded.column("c0").type) and pa.types.is_dictionary(encoded.column("c1").type)
    expected_frame = batch_score.features_frame(plain, schema)
    frame = batch_score.features_frame(encoded, schema)
    pd.testing.assert_frame_equal(frame, expected_frame)
    for name in ("c0", "c1"):
        assert frame[name].dtype == object
        assert frame[name].isna().sum() == values.count(None)
        texts = [v for v in frame[name] if isinstance(v, str)]
        assert {type(v) for v in texts} == {str}
        assert len({id(v) for v in texts}) == len(set(values) - {None})  # one object per distinct value
    sliced = encoded.slice(3, 4000)  # a chunk cut out of a row group keeps its own rows
    pd.testing.assert_frame_equal(
        batch_score.features_frame(sliced, schema), batch_score.features_frame(plain.slice(3, 4000), schema)
    )


def test_text_gaps_unseen_values_and_a_text_key_score_like_predict(scoring: Scoring, termination_log: Path) -> None:
    """Missing and unseen text reach the pipeline as they would by hand; a key column that is also a
    text feature is written as read (plain text, not the dictionary the feature is read as)."""
    plan, rows, pipeline = scoring
    rows = rows.copy()
    rng = np.random.default_rng(7)
    rows.loc[rng.random(len(rows)) < 0.05, "c0"] = None
    rows.loc[rng.random(len(rows)) < 0.05, "c1"] = "violet"  # not a category the model was trained on
    inputs = Path(plan.input_uri.removeprefix("file://"))
    shutil.rmtree(inputs)
    inputs.mkdir()
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), inputs / "in.parquet", row_group_size=3000)
    plan = plan.model_copy(update={"key_columns": ["customer", "c1"], "shards": 2, "chunk_rows": 2500})
    for i in range(2):
        run_index(plan, i, termination_log)
    files = sorted(Path(plan.output_dir.removeprefix("file://")).glob("part-*.parquet"))
    assert pq.read_schema(files[0]).field("c1").type == pq.read_schema(inputs / "in.parquet").field("c1").type
    out = parts(plan)
    assert out["customer"].tolist() == rows["customer"].tolist()
    assert out["c1"].tolist() == rows["c1"].tolist()
    assert (out[contracts.COLLECT_PREDICTION_COLUMN].to_numpy() == expected(pipeline, rows)).all()


def test_many_small_chunks_come_out_in_the_input_order(scoring: Scoring, termination_log: Path) -> None:
    """Chunks of 97 rows across row groups of 1,000 and three files: with a read ahead and a write
    behind the prediction, every row still lands once, in its place, next to its own prediction."""
    plan, rows, pipeline = scoring
    plan = plan.model_copy(update={"key_columns": ["customer"], "shards": 1, "chunk_rows": 97})
    result = run_index(plan, 0, termination_log)
    assert result["rows"] == len(rows)
    out = parts(plan)
    assert out["customer"].tolist() == rows["customer"].tolist()
    assert (out[contracts.COLLECT_PREDICTION_COLUMN].to_numpy() == expected(pipeline, rows)).all()
    footers = [pq.ParquetFile(f).metadata for f in sorted(Path(plan.input_uri.removeprefix("file://")).iterdir())]
    groups = [meta.row_group(g).num_rows for meta in footers for g in range(meta.num_row_groups)]
    written = pq.ParquetFile(batch_score.part_uri(plan.output_dir, 0).removeprefix("file://")).num_row_groups
    assert written == sum(-(-rows_in_group // 97) for rows_in_group in groups)  # one per chunk, no row group spans two


def test_a_corrupt_row_group_mid_shard_fails_it_cleanly(scoring: Scoring, termination_log: Path) -> None:
    """A row group that cannot be decoded, in the middle of the shard (the reader thread hits it after
    chunks before it were predicted and written): the shard fails with a result, no part, no
    temporary file, and no thread left behind."""
    plan, _, _ = scoring
    path = Path(plan.input_uri.removeprefix("file://")) / "in-1.parquet"
    column = pq.ParquetFile(path).metadata.row_group(4).column(0)
    with path.open("r+b") as handle:  # the footer stays valid: the layout reads, the rows do not
        handle.seek(column.data_page_offset)
        handle.write(b"\xff" * column.total_compressed_size)
    plan = plan.model_copy(update={"shards": 1, "chunk_rows": 500})
    run = run_main(batch_score.main, ["--spec", plan.model_dump_json(by_alias=True), "--index", "0"], termination_log)
    assert run.exit_code == contracts.ExitCode.STORE_ERROR, run.result
    assert run.result["ok"] is False and "in-1.parquet" in run.result["error"]
    assert leftovers(plan) == []
    assert scoring_threads() == []


def test_a_conversion_error_mid_shard_fails_it_cleanly(scoring: Scoring, termination_log: Path) -> None:
    """The main thread fails (the last file's x3 is text) while a read and a write are in flight."""
    plan, rows, _ = scoring
    path = Path(plan.input_uri.removeprefix("file://")) / "in-2.parquet"
    last = rows.iloc[15000:].assign(x3="high")  # text Arrow cannot cast to a number
    pq.write_table(pa.Table.from_pandas(last, preserve_index=False), path, row_group_size=1000)
    plan = plan.model_copy(update={"shards": 1, "chunk_rows": 500})
    run = run_main(batch_score.main, ["--spec", plan.model_dump_json(by_alias=True), "--index", "0"], termination_log)
    assert run.exit_code == contracts.ExitCode.DATA_ERROR, run.result
    assert run.result["reason"] == "SchemaMismatch" and "x3" in run.result["error"]
    assert leftovers(plan) == []
    assert scoring_threads() == []


def test_a_write_error_mid_shard_fails_it_cleanly(scoring: Scoring, termination_log: Path, tmp_path: Path) -> None:
    """The store refuses a write half-way through the part (a real process whose file size limit is
    half the part's size, so that the kernel fails the write with EFBIG): a StoreError the Job
    retries, no part, no temporary file, and the process ends (no writer thread keeps it alive)."""
    plan, _, _ = scoring
    plan = plan.model_copy(update={"shards": 1, "chunk_rows": 1000, "key_columns": ["customer"]})
    whole = plan.model_copy(update={"output_dir": plan.output_dir + "-whole"})
    run_index(whole, 0, termination_log)
    whole_part = Path(batch_score.part_uri(whole.output_dir, 0).removeprefix("file://"))
    part_size = whole_part.stat().st_size
    assert pq.ParquetFile(whole_part).num_row_groups == 24  # one per chunk: half the size is mid-stream

    def limit_file_size() -> None:  # Python ignores SIGXFSZ: the write fails instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (part_size // 2, part_size // 2))

    env = {**os.environ, contracts.ENV_TERMINATION_LOG: str(termination_log)}
    spec = plan.model_dump_json(by_alias=True)
    command = [str(CONSOLE_SCRIPT), "batch-score", "--spec", spec, "--index", "0", "--log-level", "DEBUG"]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, check=False, preexec_fn=limit_file_size
    )
    assert done.returncode == contracts.ExitCode.STORE_ERROR, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ok"] is False and result["reason"] == "StoreUnavailable", result
    assert "write_table" in done.stderr  # the debug traceback: a chunk's write failed, not the final close
    assert leftovers(plan) == []


def test_the_pipeline_predicts_with_one_blas_thread_and_the_setting_is_restored(scoring: Scoring) -> None:
    """BLAS's idle threads spin between the chunks' small matrix products and take the CPU the pod
    predicts with (1.7x slower on the trainer's pipeline): scoring runs BLAS on one thread, and leaves
    the process's own setting as it found it."""
    plan, rows, pipeline = scoring
    before = [(lib["filepath"], lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"]
    seen: list[int] = []
    predict = pipeline.predict

    def recording_predict(frame: pd.DataFrame) -> np.ndarray:
        seen.extend(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")
        return np.asarray(predict(frame))

    pipeline.predict = recording_predict  # type: ignore[method-assign]
    result = batch_score.score(plan.model_copy(update={"shards": 1, "chunk_rows": 5000}), 0, pipeline)
    assert result.rows == len(rows)
    assert seen and set(seen) == {1}
    assert [(lib["filepath"], lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"] == before


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
