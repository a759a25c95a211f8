"""Collection of scoring inputs and outputs: Parquet partitioned by date and hour, every row at 100%
sampling, bounded memory, a store that fails costs rows (counted) and never requests, and SIGTERM
flushes what is buffered.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mlops_operator import contracts
from mlops_operator.workloads.serve.app import ServeApp
from mlops_operator.workloads.serve.collector import Collector, CollectorSettings
from mlops_operator.workloads.serve.metrics import ServeMetrics
from mlops_operator.workloads.serve.model import Batch, Feature, ServedModel

from ._serving import ServerProcess, ThreadServer, Trained, build_models

COLLECT_COLUMNS = [
    contracts.COLLECT_TIME_COLUMN,
    contracts.COLLECT_PREDICTION_COLUMN,
    contracts.COLLECT_MODEL_VERSION_COLUMN,
    contracts.COLLECT_ID_COLUMN,
]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Trained]:
    return build_models(tmp_path_factory.mktemp("models"))


def read_collected(root: Path) -> pd.DataFrame:
    files = sorted(glob.glob(f"{root}/date=*/hour=*/*.parquet"))
    if not files:
        return pd.DataFrame()
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def rows_of(X: pd.DataFrame, start: int, stop: int) -> dict[str, object]:
    part = X.iloc[start:stop]
    return {
        "inputs": [
            {
                "name": c,
                "shape": [len(part)],
                "datatype": "FP64" if part[c].dtype.kind == "f" else "BYTES",
                "data": part[c].tolist(),
            }
            for c in part.columns
        ]
    }


class Server:
    """ServeApp + Collector under a real uvicorn in a thread; stopping it runs the lifespan flush."""

    def __init__(self, trained: Trained, settings: CollectorSettings) -> None:
        self.model = ServedModel(trained.name, "7", trained.pipeline)
        self.metrics = ServeMetrics()
        self.collector = Collector(
            settings,
            self.model.features,
            "7",
            on_written=self.metrics.collector_written.inc,
            on_dropped=lambda reason, n: self.metrics.collector_dropped.labels(reason).inc(n),
        )
        self.thread = ThreadServer(ServeApp(trained.name, "7", self.model, self.metrics, self.collector))

    def __enter__(self) -> Server:
        self.thread.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.__exit__()

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return value or 0.0


@pytest.mark.parametrize("name", ["breast_cancer", "mixed"])
def test_all_rows_arrive_at_full_sampling(name: str, models: dict[str, Trained], tmp_path: Path) -> None:
    trained = models[name]
    settings = CollectorSettings(uri=tmp_path.as_uri(), flush_rows=100, flush_interval=3600)
    with Server(trained, settings) as server:
        for start in range(0, 500, 25):
            r = httpx.post(f"{server.thread.url}/v2/models/{name}/infer", json=rows_of(trained.X, start, start + 25))
            assert r.status_code == 200, r.text
    # flushed by size while serving, and the rest on shutdown
    collected = read_collected(tmp_path)
    assert len(collected) == 500
    assert list(collected.columns) == list(trained.X.columns) + COLLECT_COLUMNS
    collected = collected.sort_values(list(trained.X.columns[:3])).reset_index(drop=True)
    expected = trained.X.iloc[:500].copy()
    expected["pred"] = trained.pipeline.predict(expected)
    expected = expected.sort_values(list(trained.X.columns[:3])).reset_index(drop=True)
    pd.testing.assert_frame_equal(collected[list(trained.X.columns)], expected[list(trained.X.columns)])
    assert collected[contracts.COLLECT_PREDICTION_COLUMN].tolist() == expected["pred"].tolist()
    assert set(collected[contracts.COLLECT_MODEL_VERSION_COLUMN]) == {"7"}
    assert str(collected[contracts.COLLECT_TIME_COLUMN].dtype) == "datetime64[us, UTC]"
    assert server.metric("mlops_serve_collector_rows_written_total") == 500
    assert not glob.glob(f"{tmp_path}/**/.*", recursive=True)  # no temp files left behind


def test_files_are_partitioned_by_the_hour_of_each_row(tmp_path: Path) -> None:
    hours = iter(
        [
            datetime(2026, 3, 1, 23, 59, tzinfo=UTC).timestamp(),
            datetime(2026, 3, 2, 0, 1, tzinfo=UTC).timestamp(),
        ]
    )
    features = [Feature("a", False), Feature("b", False)]
    collector = Collector(CollectorSettings(uri=tmp_path.as_uri()), features, "1", clock=lambda: next(hours))
    collector.offer(Batch(2, matrix=np.array([[1.0, 2.0], [3.0, 4.0]])), np.array([0, 1]), "r1")
    collector.offer(Batch(1, matrix=np.array([[5.0, np.nan]])), np.array([1]), "r2")
    assert collector.flush() == 3
    first = glob.glob(f"{tmp_path}/date=2026-03-01/hour=23/*.parquet")
    second = glob.glob(f"{tmp_path}/date=2026-03-02/hour=00/*.parquet")
    assert len(first) == 1 and len(second) == 1
    assert pq.read_table(first[0]).column("a").to_pylist() == [1.0, 3.0]
    assert pq.read_table(first[0]).column(contracts.COLLECT_ID_COLUMN).to_pylist() == ["r1:0", "r1:1"]
    assert pq.read_table(second[0]).column(contracts.COLLECT_ID_COLUMN).to_pylist() == ["r2"]
    assert np.isnan(pq.read_table(second[0]).column("b").to_numpy()).all()  # null in, missing out


def test_full_buffer_drops_and_counts(tmp_path: Path) -> None:
    dropped: list[tuple[str, int]] = []
    settings = CollectorSettings(uri=tmp_path.as_uri(), flush_rows=10_000, max_buffer_rows=10)
    collector = Collector(settings, [Feature("a", False)], "1", on_dropped=lambda r, n: dropped.append((r, n)))
    for _ in range(4):
        collector.offer(Batch(4, matrix=np.zeros((4, 1))), np.zeros(4), "r")
    assert dropped == [("buffer_full", 4), ("buffer_full", 4)]
    assert collector.flush() == 8


def test_sampling_rate(tmp_path: Path) -> None:
    features = [Feature("a", False)]
    off = Collector(CollectorSettings(uri=(tmp_path / "off").as_uri(), sample_rate=0.0), features, "1")
    half = Collector(CollectorSettings(uri=(tmp_path / "half").as_uri(), sample_rate=0.5), features, "1")
    for _ in range(400):
        off.offer(Batch(1, matrix=np.zeros((1, 1))), np.zeros(1), "r")
        half.offer(Batch(1, matrix=np.zeros((1, 1))), np.zeros(1), "r")
    assert off.flush() == 0
    assert 100 < half.flush() < 300  # binomial(400, 0.5): outside this range with p < 1e-20


def test_store_down_drops_with_a_counter_and_keeps_serving(models: dict[str, Trained], tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store's directory should be")
    trained = models["breast_cancer"]
    settings = CollectorSettings(uri=(blocker / "collected").as_uri(), flush_rows=20, flush_interval=0.2)
    with Server(trained, settings) as server:
        for start in range(0, 200, 10):
            r = httpx.post(
                f"{server.thread.url}/v2/models/{trained.name}/infer",
                json=rows_of(trained.X, start, start + 10),
            )
            assert r.status_code == 200
        server.collector.flush()
        assert server.metric("mlops_serve_collector_rows_dropped_total", reason="store_error") == 200
        assert server.metric("mlops_serve_collector_rows_written_total") == 0
        assert httpx.get(f"{server.thread.url}/v2/health/ready").status_code == 200


@pytest.fixture
def serve_process(models: dict[str, Trained], tmp_path: Path) -> Iterator[tuple[ServerProcess, Path]]:
    out = tmp_path / "collected"
    server = ServerProcess(
        models["breast_cancer"],
        "--collect-uri",
        out.as_uri(),
        "--sample-rate",
        "1",
        "--flush-interval",
        "3600",
        "--flush-rows",
        "1000000",
    )
    try:
        yield server, out
    finally:
        server.kill()


@pytest.mark.slow
def test_sigterm_flushes_the_buffer(serve_process: tuple[ServerProcess, Path], models: dict[str, Trained]) -> None:
    server, out = serve_process
    server.wait_ready()
    X = models["breast_cancer"].X
    with httpx.Client(base_url=server.url) as client:
        for start in range(0, 300, 3):
            assert client.post("/v2/models/breast_cancer/infer", json=rows_of(X, start, start + 3)).status_code == 200
    assert read_collected(out).empty  # nothing flushed yet: interval and size are far away
    code, log = server.terminate()
    assert code == 0, log
    collected = read_collected(out)
    assert len(collected) == 300
    assert sorted(collected["mean radius"].tolist()) == sorted(X["mean radius"].iloc[:300].tolist())


def test_buffer_is_bounded_in_bytes_and_long_strings_are_cut(tmp_path: Path) -> None:
    dropped: list[tuple[str, int]] = []
    truncated: list[int] = []
    settings = CollectorSettings(uri=tmp_path.as_uri(), max_buffer_bytes=20_000, max_value_chars=8)
    collector = Collector(
        settings,
        [Feature("a", False), Feature("c", True)],
        "1",
        on_dropped=lambda r, n: dropped.append((r, n)),
        on_truncated=truncated.append,
    )
    columns = [np.array([1.0, 2.0]), np.array(["short", "x" * 5000], dtype=object)]
    for i in range(5):  # each request's body held ~6 kB of strings: the fourth and fifth do not fit
        collector.offer(Batch(2, columns=columns), np.array([0, 1]), f"r{i}", body_bytes=6_000)
    assert dropped == [("buffer_full", 2), ("buffer_full", 2)]
    assert collector.flush() == 6 and truncated == [3]
    table = pq.read_table(glob.glob(f"{tmp_path}/date=*/hour=*/*.parquet")[0])
    assert table.column("c").to_pylist() == ["short", "x" * 8] * 3
    assert table.column(contracts.COLLECT_ID_COLUMN).to_pylist() == ["r0:0", "r0:1", "r1:0", "r1:1", "r2:0", "r2:1"]
