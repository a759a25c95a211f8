from __future__ import annotations

from mlops_operator import conditions as cond
from mlops_operator.api.results import ProfileResult
from mlops_operator.api.v1alpha1.dataset import Dataset, DatasetStatus
from mlops_operator.reconcilers import dataset as d
from mlops_operator.reconcilers import observe
from tests.unit import factories as f
from tests.unit.factories import NOW

ROOT = "file:///var/lib/mlops"


def ok(version: str, rows: int = 150) -> observe.JobOutcome[ProfileResult]:
    return observe.JobOutcome(
        observe.JobPhase.SUCCEEDED, result=ProfileResult(ok=True, version=version, rows=rows, columns=5)
    )


def test_new_version_is_recorded_once_with_an_event() -> None:
    ds, work = f.dataset(), DatasetStatus()
    events, new = d.apply_profile_outcome(work, ds, "iris-profile-1", ok("a" * 64), NOW, ROOT)
    d.summarize(work, ds.generation, NOW)
    assert new and [e.reason for e in events] == ["NewVersion"]
    assert work.version == "a" * 64 and work.rows == 150 and work.phase == "Ready" and len(work.versions) == 1
    assert work.data_uri == f"{ROOT}/team-a/datasets/iris/{'a' * 64}/data.parquet"
    assert cond.is_true(work.conditions, "Ready") and d.profile_handled(work, "iris-profile-1")
    events, new = d.apply_profile_outcome(work, ds, "iris-profile-2", ok("a" * 64), NOW, ROOT)
    assert not new and events == [] and len(work.versions) == 1


def test_version_history_is_bounded() -> None:
    ds, work = f.dataset(), DatasetStatus()
    for i in range(Dataset.MAX_VERSIONS + 5):
        d.apply_profile_outcome(work, ds, f"j{i}", ok(f"{i:064x}"), NOW, ROOT)
    assert (
        len(work.versions) == Dataset.MAX_VERSIONS and work.versions[-1].version == f"{Dataset.MAX_VERSIONS + 4:064x}"
    )


def test_failure_is_a_condition_with_the_workload_reason() -> None:
    ds, work = f.dataset(), DatasetStatus()
    failed: observe.JobOutcome[ProfileResult] = observe.JobOutcome(
        observe.JobPhase.FAILED, "EmptyDataset", "0 rows after the header"
    )
    events, _ = d.apply_profile_outcome(work, ds, "j", failed, NOW, ROOT)
    d.summarize(work, ds.generation, NOW)
    ready = cond.get(work.conditions, "Ready")
    assert ready is not None and (ready.status, ready.reason, ready.message) == (
        cond.FALSE,
        "EmptyDataset",
        "0 rows after the header",
    )
    assert events[0].type == "Warning" and work.phase == "Failed"


def test_running_profile_is_not_handled_yet() -> None:
    work = DatasetStatus()
    d.start_profiling(work, "j", 1, NOW)
    assert not d.profile_handled(work, "j") and work.phase == "Profiling"


def test_refresh_tick_only_with_an_interval() -> None:
    assert d.refresh_tick(f.dataset(), NOW) == 0
    assert d.refresh_tick(f.dataset(refreshIntervalSeconds=600), NOW) == int(NOW.timestamp()) // 600
