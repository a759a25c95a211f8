"""Retention against real stores: a file store, and s3fs against moto on 127.0.0.1. What is expired
goes with its bytes counted; what is recent, unparseable, current or referenced stays. Dataset versions
through the profile workload's retention, model artifacts and collected rows through the registry Job's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlops_operator import contracts, store
from mlops_operator.api.plans import ModelRetentionPlan, ProfilePlan, RegistryPlan
from mlops_operator.api.results import ProfileResult
from mlops_operator.api.v1alpha1.model import ModelVersion, VersionState
from mlops_operator.workloads import registry
from mlops_operator.workloads.retention import Pruned, after_profile, prune_partitions, prune_runs

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)


@pytest.fixture(params=["file", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return tmp_path.as_uri()
    return str(request.getfixturevalue("s3_root"))


def _write(uri: str, size: int) -> None:
    store.write_bytes_atomic(uri, b"x" * size)


def _listing(uri: str) -> list[str]:
    fs, path = store.filesystem(uri)
    return sorted(p[len(path) + 1 :] for p in fs.find(path)) if fs.exists(path) else []


def test_collected_and_label_partitions_past_the_retention_go(root: str) -> None:
    collected = store.join(root, "team-a/collected/iris")
    _write(store.join(collected, "date=2026-03-01/hour=07/a.parquet"), 100)
    _write(store.join(collected, "date=2026-03-01/hour=07/b.parquet"), 50)
    _write(store.join(collected, "date=2026-03-03/hour=12/c.parquet"), 10)  # ends 13:00 > cutoff 12:30
    _write(store.join(collected, "date=2026-03-09/hour=01/d.parquet"), 10)
    _write(store.join(collected, "exports/team.parquet"), 10)  # not a partition: never touched
    assert prune_partitions(collected, timedelta(days=7), NOW) == Pruned(objects=2, bytes=150)
    assert _listing(collected) == [
        "date=2026-03-03/hour=12/c.parquet",
        "date=2026-03-09/hour=01/d.parquet",
        "exports/team.parquet",
    ]
    labels = store.join(root, "team-a/labels/iris")
    _write(store.join(labels, "date=2026-03-02/l.parquet"), 7)
    _write(store.join(labels, "date=2026-03-03/l.parquet"), 7)
    assert prune_partitions(labels, timedelta(days=7), NOW) == Pruned(objects=1, bytes=7)
    assert _listing(labels) == ["date=2026-03-03/l.parquet"]
    assert prune_partitions(store.join(root, "team-a/collected/none"), timedelta(days=1), NOW) == Pruned()


def test_drift_runs_beyond_the_newest_go(root: str) -> None:
    monitor = store.join(root, "team-a/drift/iris-drift")
    for day in range(1, 6):
        _write(store.join(monitor, f"2026030{day}T000000Z/report.json"), day)
        _write(store.join(monitor, f"2026030{day}T000000Z/report.html"), 10)
    removed = prune_runs(monitor, keep=2, current="20260301T000000Z")
    assert removed == Pruned(objects=4, bytes=2 + 3 + 20)
    assert sorted({p.split("/")[0] for p in _listing(monitor)}) == [
        "20260301T000000Z",
        "20260304T000000Z",
        "20260305T000000Z",
    ]


def _dataset_version(root: str, version: str, size: int, *, complete: bool = True) -> None:
    directory = contracts.dataset_version_dir(root, "team-a", "iris", version)
    _write(store.join(directory, "data.parquet/part-00000.parquet"), size)
    _write(store.join(directory, "profile.json"), 2)
    if complete:
        _write(store.join(directory, "complete.json"), 3)


def test_dataset_versions_past_the_bound_go_unless_referenced_or_current(root: str) -> None:
    for version in ["v1", "v2", "v3", "v4", "v5"]:
        _dataset_version(root, version, 10)
    _dataset_version(root, "v0", 10, complete=False)  # no marker: being written, or not a version
    _write(store.join(contracts.dataset_dir(root, "team-a", "iris"), "parts/p.parquet"), 5)
    plan = ProfilePlan.model_validate(
        {
            "namespace": "team-a",
            "dataset": "iris",
            "storeUri": root,
            "spec": {"source": {"uri": "sklearn://iris"}},
            # status lists v2..v5, newest first; a Model's version still lists v1; v5 is this run's
            "retention": {"keep": 2, "recent": ["v4", "v3", "v2"], "referenced": ["v1"]},
        }
    )
    result = after_profile(plan, ProfileResult(ok=True, version="v5"))
    assert (result.pruned_versions, result.pruned_objects, result.pruned_bytes) == (2, 6, 2 * 15)
    assert result.pruned_recent == ["v2", "v3"]
    left = {p.split("/")[0] for p in _listing(contracts.dataset_dir(root, "team-a", "iris"))}
    assert left == {"v0", "v1", "v4", "v5", "parts"}
    again = after_profile(plan, ProfileResult(ok=True, version="v5"))
    assert again.pruned_versions == 0 and again.pruned_objects == 0
    failed = after_profile(plan.model_copy(update={"retention": None}), ProfileResult(ok=True, version="v5"))
    assert failed.pruned_versions is None  # no retention asked: nothing said


def _model_version(root: str, n: int, size: int) -> None:
    _write(contracts.model_artifact_uri(root, "team-a", "iris-clf", n), size)
    _write(store.join(contracts.model_version_dir(root, "team-a", "iris-clf", n), "metrics.json"), 1)


def test_registry_job_deletes_dropped_artifacts_and_old_collected_rows(root: str) -> None:
    for n in range(1, 7):
        _model_version(root, n, 100)
    collected = contracts.collected_prefix(root, "team-a", "iris-clf")
    _write(store.join(collected, "date=2026-02-01/hour=00/a.parquet"), 40)  # older than 7 days
    _write(store.join(collected, "date=2026-03-09/hour=00/b.parquet"), 40)
    registry_uri = contracts.model_registry_uri(root, "team-a", "iris-clf")
    kept = [ModelVersion(version=n, state=VersionState.RETIRED) for n in (2, 4, 5)]  # 2: serves, pinned
    plan = RegistryPlan(
        namespace="team-a",
        model="iris-clf",
        registry_uri=registry_uri,
        versions=kept,
        retention=ModelRetentionPlan(
            model_dir=registry_uri.rsplit("/", 1)[0],
            keep_versions=[2, 4, 5],
            partition_prefixes=[collected, contracts.labels_prefix(root, "team-a", "iris-clf")],
            max_age_days=7,
            now=NOW,
        ),
    )
    result = registry.sync(plan)
    # v1 and v3 go; v6 is above every listed version (a training Job may be writing it): it stays
    assert (result.pruned_versions, result.pruned_objects, result.pruned_bytes) == (2, 2 * 2 + 1, 2 * 101 + 40)
    left = {p.split("/")[0] for p in _listing(registry_uri.rsplit("/", 1)[0])}
    assert left == {"v2", "v4", "v5", "v6", "registry.json"}
    assert _listing(collected) == ["date=2026-03-09/hour=00/b.parquet"]
    document = store.read_json(registry_uri)
    assert document["artifactsPruned"] == [1, 3] and [e["version"] for e in document["versions"]] == [2, 4, 5]
    again = registry.sync(plan)  # nothing left to delete; the record of what went stays
    assert again.pruned_versions == 0 and store.read_json(registry_uri)["artifactsPruned"] == [1, 3]


def test_an_hour_directory_a_server_just_made_survives_in_a_day_whose_other_hours_expire(tmp_path: Path) -> None:
    # the collector makes date=/hour=/ and then writes into it: a pruner that removed "empty" days
    # recursively deleted the fresh directory in between (FileNotFoundError in the server's write)
    now = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)
    day = tmp_path / "date=2026-12-02"
    (day / "hour=00").mkdir(parents=True)  # made a moment ago, nothing written yet
    old = tmp_path / "date=2026-10-01" / "hour=05"
    old.mkdir(parents=True)
    (old / "part.parquet").write_bytes(b"x" * 10)
    removed = prune_partitions(tmp_path.as_uri(), timedelta(days=30), now)
    assert (removed.objects, removed.bytes) == (1, 10)
    assert (day / "hour=00").is_dir()
    assert not (tmp_path / "date=2026-10-01").exists()  # a day whose every hour expired goes
