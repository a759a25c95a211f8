from __future__ import annotations

from typing import Any

import pytest

from mlops_operator import conditions as cond
from mlops_operator import contracts
from mlops_operator.api.results import ProfileResult
from mlops_operator.api.v1alpha1.dataset import Dataset, DatasetStatus, QualityFinding, Severity
from mlops_operator.api.v1alpha1.model import ModelStatus
from mlops_operator.api.v1alpha1.source import VersionLineage
from mlops_operator.reconcilers import dataset as d
from mlops_operator.reconcilers import observe
from mlops_operator.reconcilers.model.training import decide_training
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


# --- refreshes: unchanged listings, requests, lineage ------------------------------------------------
LISTED = "f" * 64


def unchanged(version: str) -> observe.JobOutcome[ProfileResult]:
    result = ProfileResult(ok=True, unchanged=True, version=version, listing_fingerprint=LISTED)
    return observe.JobOutcome(observe.JobPhase.SUCCEEDED, result=result)


def requested(value: str) -> Dataset:
    ds = f.dataset()
    ds.metadata = {**ds.metadata, "annotations": {contracts.ANNOTATION_REFRESH_REQUESTED: value}}
    return ds


def profiled_once() -> tuple[Dataset, DatasetStatus]:
    ds, work = f.dataset(), DatasetStatus()
    result = ProfileResult(
        ok=True, version="a" * 64, rows=150, columns=5, listing_fingerprint="e" * 64,
        findings=[QualityFinding(rule="duplicates", severity=Severity.WARNING, count=1, message="1 duplicate row")],
        lineage=VersionLineage(source_files=3, source_digest="d" * 64, rules_sha256="r" * 64, rows_read=151, rows=150),
    )
    d.apply_profile_outcome(work, ds, "iris-profile-1", observe.JobOutcome(observe.JobPhase.SUCCEEDED, result=result),
                            NOW, ROOT)
    return ds, work


def test_a_new_version_records_its_lineage_and_listing() -> None:
    _, work = profiled_once()
    assert work.listing_fingerprint == "e" * 64
    lineage = work.versions[-1].lineage
    assert lineage is not None and (lineage.source_files, lineage.rows_read, lineage.rows) == (3, 151, 150)


def test_an_unchanged_listing_makes_no_version_and_starts_no_training() -> None:
    ds, work = profiled_once()
    before = work.model_copy(deep=True)
    events, new = d.apply_profile_outcome(work, ds, "iris-profile-2", unchanged("a" * 64), NOW, ROOT)
    assert not new and events == []  # a tick that found nothing says nothing
    assert (work.version, work.versions, work.findings, work.rows) == (
        before.version, before.versions, before.findings, before.rows
    )
    assert work.listing_fingerprint == LISTED and d.profile_handled(work, "iris-profile-2")
    profiled = cond.get(work.conditions, "Profiled")
    assert profiled is not None and profiled.status == cond.TRUE and "unchanged" in profiled.message
    # The Model side: a Model trained on this version has no training to start.
    model = f.model(status={"trainingSpecHash": "h", "trainedDatasetVersion": "a" * 64})
    assert decide_training(model, model.status or ModelStatus(), "h", work.version or "", NOW).trigger is None


def test_a_refresh_request_is_answered_once() -> None:
    request = "2026-01-02T03:00:00Z;drift: petal_width"
    ds = requested(request)
    _, work = profiled_once()
    assert d.refresh_request(ds) == (request, None) and d.refresh_pending(work, request)
    d.start_profiling(work, "iris-profile-r", ds.generation, NOW, request)
    assert work.last_refresh is not None and work.last_refresh.outcome is None
    assert work.last_refresh.reason == "drift: petal_width" and work.last_refresh.requested_at is not None
    assert not d.refresh_pending(work, request)
    events, _ = d.apply_profile_outcome(work, ds, "iris-profile-r", unchanged("a" * 64), NOW, ROOT)
    assert [e.reason for e in events] == ["RefreshUnchanged"]
    last = work.last_refresh
    assert (last.outcome, last.version, last.finished_at) == ("Unchanged", "a" * 64, NOW)
    d.start_profiling(work, "iris-profile-r", ds.generation, NOW, request)  # seen again: not a new request
    assert work.last_refresh == last
    assert d.job_identity(work, "") == request  # the annotation removed: the same Job name, no new run
    assert d.job_identity(work, "2026-01-03T00:00:00Z;again") == "2026-01-03T00:00:00Z;again"


def test_a_failed_refresh_is_recorded_as_failed() -> None:
    request = "2026-01-02T03:00:00Z;drift"
    ds, work = profiled_once()
    d.start_profiling(work, "iris-profile-r", ds.generation, NOW, request)
    failed: observe.JobOutcome[ProfileResult] = observe.JobOutcome(observe.JobPhase.FAILED, "AccessDenied", "denied")
    d.apply_profile_outcome(work, ds, "iris-profile-r", failed, NOW, ROOT)
    assert work.last_refresh is not None and work.last_refresh.outcome == "Failed"
    assert work.last_refresh.version == "a" * 64 and "AccessDenied" in (work.last_refresh.message or "")


def test_a_new_version_answers_the_request_with_it() -> None:
    request = "2026-01-02T03:00:00Z;drift"
    ds, work = profiled_once()
    d.start_profiling(work, "iris-profile-r", ds.generation, NOW, request)
    d.apply_profile_outcome(work, ds, "iris-profile-r", ok("b" * 64), NOW, ROOT)
    assert work.last_refresh is not None and (work.last_refresh.outcome, work.last_refresh.version) == (
        "NewVersion", "b" * 64
    )


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("yesterday;drift", "must be"), ("2026-01-02T03:00:00Z;" + "x" * 300, "characters long")],
)
def test_a_malformed_refresh_request_is_ignored_with_a_warning(value: str, fragment: str) -> None:
    request, ignored = d.refresh_request(requested(value))
    assert request == "" and ignored is not None and ignored.type == "Warning" and fragment in ignored.message


def job(name: str, phase: str | None = None) -> dict[str, Any]:
    conditions = [{"type": phase, "status": "True"}] if phase else []
    return {"metadata": {"name": name}, "status": {"conditions": conditions}}


def test_one_profile_job_at_a_time() -> None:
    work = DatasetStatus()
    d.start_profiling(work, "tick-1", 1, NOW)
    running = {"tick-1": job("tick-1")}
    assert d.running_job(running) == "tick-1" and not d.wants_job(work, "tick-2", running)
    assert d.to_settle(work, "tick-2", running) == []  # still running: nothing to record
    done = {"tick-1": job("tick-1", "Complete")}
    assert d.to_settle(work, "tick-2", done) == ["tick-1"]  # the older Job's result first
    assert d.running_job(done) is None and d.wants_job(work, "tick-2", done)
    assert not d.wants_job(work, "tick-1", done)  # it exists: it is read, never created twice
