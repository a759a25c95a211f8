"""Issue 15 item 4's acceptance on the local cluster: a BatchScoring scores 1,000,000 rows in 4 shards
of a real Indexed Job, one shard is killed mid-run and retried alone, and the predictions equal
`model.predict` on the same rows.

The operator runs in this process (the `live` fixture); profiling, training, serving and the four
scoring shards are real pods of the project image. The rows are generated here (numpy, seeded) and
written straight into the namespace's store claim, a hostPath volume on this machine; the outputs are
read back from it.

The kill is made deterministic rather than timed: once shard 2's pod has written predictions to its
part's temporary file (and not yet its part), its process is frozen with SIGSTOP. While it is frozen
the other three shards finish and the status must say so (3 of 4 shards, 750,000 rows, none failed);
then the frozen process gets SIGKILL. The Job controller runs index 2 again, alone.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops_operator import contracts
from mlops_operator.api.v1alpha1 import BatchScoring, Dataset, Model
from mlops_operator.builders import namespace as namespace_builders
from mlops_operator.kube import JOB, POD
from mlops_operator.reconcilers.batch_runs import ANNOTATION_COMPLETION_INDEX
from mlops_operator.settings import Settings
from mlops_operator.workloads import artifacts
from tests.e2e.conftest import Cluster, container_pid
from tests.integration.reconcile_harness import Cluster as Live
from tests.integration.reconcile_harness import eventually, resource

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
MOUNT = contracts.STORE_MOUNT_PATH  # where workload pods mount the store claim
ROWS, SHARDS, KILLED = 1_000_000, 4, 2
# Three input files of unequal size: shard 1 spans the first boundary (400,000), shard 2 ends on the second.
FILE_ROWS = (400_000, 350_000, 250_000)
FEATURES = ["tenure", "spend", "tickets", "segment"]
SEGMENTS = np.array(["north", "south", "east", "west", "online"], dtype=object)
KEY = "customer_id"
TRAIN_DIR, SCORE_DIR = "sources/churn-train", "sources/churn-score"
# A forest rather than a linear model: each shard predicts for a few seconds of CPU (1,000-row chunks), so
# it is caught mid-run easily, and its votes do not depend on how the rows are chunked.
FOREST = {
    "estimator": "sklearn.ensemble.RandomForestClassifier",
    "params": {"n_estimators": 30, "max_depth": 8, "random_state": 0},
}
EVERY = 0.5


def customers(n: int, seed: int) -> pd.DataFrame:
    """`n` customers: three numeric features (2 % of `tickets` missing), a segment (1 % missing), a
    churn label that depends on all four, and a unique key in shuffled order."""
    rng = np.random.default_rng(seed)
    tenure = np.round(rng.uniform(0, 10, n), 2)
    spend = np.round(rng.normal(0, 1, n), 3)
    tickets = np.round(rng.exponential(2.0, n), 2)
    tickets[rng.random(n) < 0.02] = np.nan
    segment = rng.choice(SEGMENTS, n)
    segment[rng.random(n) < 0.01] = np.nan
    signal_ = tenure / 10 + spend * 0.5 - np.nan_to_num(tickets, nan=2.0) * 0.2 + (segment == "online") * 0.4
    label = np.where(signal_ + rng.normal(0, 0.3, n) > 0.3, "churn", "stay")
    keys = rng.permutation(n).astype(np.int64) + 10_000_000
    return pd.DataFrame(
        {KEY: keys, "tenure": tenure, "spend": spend, "tickets": tickets, "segment": segment, "label": label}
    )


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Under a hidden name first, then renamed: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), temporary, row_group_size=50_000)
    os.replace(temporary, path)


def claim_on_host(cluster: Cluster, namespace: str) -> Path:
    """The namespace's store claim (the operator's own body: it adopts this one), bound; its hostPath."""
    claim = namespace_builders.store_claim(namespace, Settings())
    assert claim is not None
    cluster.apply(claim, namespace=namespace)
    name = claim["metadata"]["name"]

    def volume() -> str | None:
        pvc = cluster.json("-n", namespace, "get", "pvc", name)
        return pvc["spec"].get("volumeName") if pvc["status"].get("phase") == "Bound" else None

    pv = cluster.json("get", "pv", eventually(volume, what="the store claim bound", every=EVERY, attempts=120))
    return Path((pv["spec"].get("hostPath") or pv["spec"]["local"])["path"])


def on_host(root: Path, uri: str) -> Path:
    """Where a file:// URI of the pods' store mount lives on this machine."""
    path = uri.removeprefix("file://")
    assert path.startswith(MOUNT + "/"), uri
    return root / path.removeprefix(MOUNT + "/")


def shard_pods(c: Live, job: str) -> dict[int, list[dict[str, Any]]]:
    """The Job's pods per completion index, oldest first."""
    items = c.call("GET", POD, query={"labelSelector": f"batch.kubernetes.io/job-name={job}"})["items"]
    by_index: dict[int, list[dict[str, Any]]] = {}
    for pod in sorted(items, key=lambda p: str(p["metadata"]["creationTimestamp"])):
        by_index.setdefault(int(pod["metadata"]["annotations"][ANNOTATION_COMPLETION_INDEX]), []).append(pod)
    return by_index


def running_container(pod: dict[str, Any]) -> str | None:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    if statuses and "running" in statuses[0].get("state", {}):
        return str(statuses[0]["containerID"]).split("://", 1)[1]
    return None


def terminated(pod: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = pod["status"]["containerStatuses"][0]["state"]
    return dict(state.get("terminated") or {})


def process_state(pid: int) -> str:
    """The one-letter state of /proc/<pid>/stat (R, S, T for stopped, ...)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def written_but_not_committed(output: Path, index: int) -> bool:
    """The shard has written predictions to its part's temporary file; its part is not there yet."""
    if (output / part_name(index)).exists():
        raise AssertionError(f"shard {index} finished before it could be stopped mid-run")
    for temporary in output.glob(f".{part_name(index)}.*.tmp") if output.is_dir() else []:
        try:
            if temporary.stat().st_size > 0:
                return True
        except FileNotFoundError:  # renamed to the part this instant: the next look fails above
            continue
    return False


def seconds_between(start: str, end: str) -> float:
    return (
        datetime.fromisoformat(end.replace("Z", "+00:00")) - datetime.fromisoformat(start.replace("Z", "+00:00"))
    ).total_seconds()


def test_a_million_rows_in_four_shards_one_killed_and_retried_alone_equal_the_model(
    cluster: Cluster, live: Live, namespace: str
) -> None:
    if not cluster.local:
        pytest.skip("writing the rows into the claim and killing a shard's process need the local cluster")
    c = live
    root = claim_on_host(cluster, namespace)
    write_parquet(customers(20_000, seed=1).drop(columns=[KEY]), root / TRAIN_DIR / "rows.parquet")
    rows = customers(ROWS, seed=2).drop(columns=["label"])
    for n, (lo, hi) in enumerate(itertools.pairwise(np.cumsum((0, *FILE_ROWS)))):
        write_parquet(rows.iloc[lo:hi], root / SCORE_DIR / f"rows-{n}.parquet")

    c.create(
        resource(
            Dataset,
            "customers",
            {"source": {"uri": f"file://{MOUNT}/{TRAIN_DIR}/rows.parquet"}, "schema": {"target": "label"}},
        )
    )
    c.create(
        resource(
            Model,
            "churn",
            {
                "datasetRef": {"name": "customers"},
                "trainer": FOREST,
                "validation": {"metric": "accuracy", "threshold": 0.7},
            },
        )
    )
    spec = {
        "modelRef": {"name": "churn"},
        "input": {"uri": f"file://{MOUNT}/{SCORE_DIR}/", "keyColumns": [KEY]},
        "shards": SHARDS,
        "backoffLimitPerIndex": 2,
        "chunkRows": 1000,
    }
    c.create(resource(BatchScoring, "churn-all", spec))
    # nothing serves yet: the BatchScoring waits for the Model, then starts on its own
    eventually(
        lambda: (c.condition("BatchScoring", "churn-all", "Ready") or {}).get("reason") == "NotTrained",
        what="the BatchScoring waiting for a serving version",
        every=EVERY,
        attempts=120,
    )
    eventually(
        lambda: c.status("Model", "churn").get("servingVersion") == 1,
        what="v1 serving",
        every=EVERY,
        attempts=600,
    )
    served = next(v for v in c.status("Model", "churn")["versions"] if v["version"] == 1)
    run = eventually(
        lambda: (c.status("BatchScoring", "churn-all").get("runs") or [None])[-1],
        what="the run started",
        every=EVERY,
        attempts=120,
    )
    job, output = run["job"], on_host(root, run["output"])
    assert run["version"] == 1

    # shard 2 caught mid-run: its process frozen after it wrote predictions, before its part exists
    container = eventually(
        lambda: running_container(shard_pods(c, job).get(KILLED, [{}])[-1]),
        what=f"shard {KILLED}'s container running",
        every=0.2,
        attempts=900,
    )
    pid = container_pid(container)
    assert "batch-score" in Path(f"/proc/{pid}/cmdline").read_text(), "not the scoring process"
    eventually(
        lambda: written_but_not_committed(output, KILLED),
        what=f"shard {KILLED} writing predictions",
        every=0.1,
        attempts=1800,
    )
    os.kill(pid, signal.SIGSTOP)
    try:
        eventually(lambda: process_state(pid) == "T", what="the shard's process stopped", every=0.05, attempts=100)
        assert not (output / part_name(KILLED)).exists(), "the shard finished before it was stopped"

        # while it is frozen the other three shards finish, and the status says so
        def three_done() -> dict[str, Any] | None:
            status = c.status("BatchScoring", "churn-all")
            return status if (status.get("shardsSucceeded"), status.get("rows")) == (3, 750_000) else None

        midway = eventually(three_done, what="3 of 4 shards done in status", every=EVERY, attempts=600)
        assert (midway["phase"], midway["shards"], midway["shardsFailed"]) == ("Running", SHARDS, 0), midway
        assert midway["runs"][-1]["shardsSucceeded"] == 3 and midway["runs"][-1]["shardsFailed"] == 0
        assert (c.condition("BatchScoring", "churn-all", "Ready") or {}).get("reason") == "JobRunning"
        before_kill = shard_pods(c, job)
        assert {i: len(p) for i, p in before_kill.items()} == {0: 1, 1: 1, 2: 1, 3: 1}
        killed_uid = before_kill[KILLED][0]["metadata"]["uid"]
        untouched = {i: p[0]["metadata"]["uid"] for i, p in before_kill.items() if i != KILLED}
    finally:
        with contextlib.suppress(ProcessLookupError):  # gone already: the exit code below says so
            os.kill(pid, signal.SIGKILL)  # mid-run; and never left frozen when a check above fails

    def run_over() -> dict[str, Any] | None:
        status = c.status("BatchScoring", "churn-all")
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    finished = eventually(run_over, what="the run finished", every=EVERY, attempts=600)
    assert finished["phase"] == "Succeeded", finished.get("message")

    # the killed index alone ran again; the other indexes' pods are the same ones, run once
    after = shard_pods(c, job)
    assert {i: [p["metadata"]["uid"] for p in pods] for i, pods in after.items() if i != KILLED} == {
        i: [uid] for i, uid in untouched.items()
    }
    first, *retries = after[KILLED]
    assert first["metadata"]["uid"] == killed_uid and len(retries) == 1, [p["metadata"]["name"] for p in after[KILLED]]
    assert first["status"]["phase"] == "Failed" and terminated(first)["exitCode"] == 128 + signal.SIGKILL
    assert all(pods[-1]["status"]["phase"] == "Succeeded" for pods in after.values())
    results = {i: json.loads(terminated(pods[-1])["message"]) for i, pods in after.items()}
    assert {i: r["rows"] for i, r in results.items()} == {i: ROWS // SHARDS for i in range(SHARDS)}
    job_status = c.call("GET", JOB, job)["status"]
    assert (job_status["completedIndexes"], job_status["succeeded"], job_status["failed"]) == ("0-3", 4, 1)
    assert not job_status.get("failedIndexes"), job_status

    # the status: rows, shards done and failed, throughput from the Job's own times and the pods' results
    assert (finished["rows"], finished["shards"], finished["shardsSucceeded"], finished["shardsFailed"]) == (
        ROWS,
        SHARDS,
        SHARDS,
        0,
    )
    (latest,) = finished["runs"]
    assert (latest["rows"], latest["shardsSucceeded"], latest["shardsFailed"]) == (ROWS, SHARDS, 0)
    wall = seconds_between(job_status["startTime"], job_status["completionTime"])
    assert finished["rowsPerSecond"] == latest["rowsPerSecond"] == round(ROWS / wall, 1)
    worked = sum(r["seconds"] for r in results.values())
    assert latest["podRowsPerSecond"] == pytest.approx(ROWS / worked, abs=0.1)
    assert (c.condition("BatchScoring", "churn-all", "Ready") or {}).get("reason") == "Succeeded"
    reasons = [reason for reason, _ in c.events("churn-all")]
    assert "RunStarted" in reasons and "RunSucceeded" in reasons, reasons

    # the predictions: one part per shard, its shard's contiguous rows in input order, equal to the
    # served version's own predict on the same rows (its artifact loaded as the server loads it)
    assert sorted(p.name for p in output.glob("part-*.parquet")) == [part_name(i) for i in range(SHARDS)]
    parts = [pq.read_table(output / part_name(i)).to_pandas() for i in range(SHARDS)]
    for i, part in enumerate(parts):
        expected_keys = rows[KEY].to_numpy()[i * ROWS // SHARDS : (i + 1) * ROWS // SHARDS]
        assert np.array_equal(part[KEY].to_numpy(), expected_keys), f"part {i} holds other rows"
    scored = pd.concat(parts, ignore_index=True).set_index(KEY)
    assert scored.index.is_unique and len(scored) == ROWS
    assert set(scored[contracts.COLLECT_MODEL_VERSION_COLUMN].unique()) == {1}

    model = artifacts.load_verified_model(on_host(root, served["artifactUri"]).as_uri(), served["sha256"])
    features = rows[FEATURES].astype({"segment": object})  # text as str objects, NaN where missing
    expected = pd.Series(model.predict(features), index=rows[KEY])
    got = scored[contracts.COLLECT_PREDICTION_COLUMN].reindex(expected.index)
    differ = int((got.to_numpy() != expected.to_numpy()).sum())
    assert differ == 0, f"{differ} of {ROWS} predictions differ from model.predict"
    assert set(expected.unique()) == {"churn", "stay"}  # both classes scored: not a constant model
    print(
        f"rows/s {finished['rowsPerSecond']} (wall {wall:.0f} s), pod rows/s {latest['podRowsPerSecond']}, "
        f"killed pod {first['metadata']['name']}, retried as {retries[0]['metadata']['name']}"
    )
