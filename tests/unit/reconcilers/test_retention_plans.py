"""The operator's half of retention: which dataset versions must stay (from every Model's status), what
a registry Job prunes and when, and how the Jobs' reports land in status and Events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mlops_operator.api.results import ProfileResult, RegistryResult
from mlops_operator.api.v1alpha1.dataset import DatasetStatus, DatasetVersion
from mlops_operator.api.v1alpha1.model import ModelStatus
from mlops_operator.reconcilers import retention
from tests.unit.factories import NOW, SETTINGS, dataset, model


def _model(name: str, dataset_name: str, versions: list[str], *, synced: bool = True, **status: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "versions": [{"version": i + 1, "state": "Retired", "datasetVersion": v} for i, v in enumerate(versions)],
        **status,
    }
    if synced:
        body["registry"] = {"digest": "abc", "syncedAt": "2026-01-01T00:00:00Z"}
    return {"metadata": {"name": name}, "spec": {"datasetRef": {"name": dataset_name}}, "status": body}


def _status(*versions: str) -> DatasetStatus:
    records = [
        DatasetVersion(version=v, rows=1, columns=1, profile_uri="file:///p", data_uri="file:///d", created_at=NOW)
        for v in versions
    ]
    return DatasetStatus(version=versions[-1] if versions else None, versions=records)


def test_the_keep_set_is_the_current_version_and_every_models_references() -> None:
    ds = dataset(retention={"versions": 3})
    models = [
        _model(
            "a",
            "iris",
            ["d1", "d2"],
            activeTraining={
                "job": "j",
                "version": 3,
                "trigger": "t",
                "datasetVersion": "d4",
                "startedAt": "2026-01-01T00:00:00Z",
            },
        ),
        _model("b", "other", ["d0"], trainedDatasetVersion="d9"),  # another Dataset's Model: kept all the same
        {"metadata": {"name": "c"}, "spec": {"datasetRef": {"name": "other"}}},  # no status: nothing to keep
    ]
    plan = retention.dataset_plan(ds, _status("d1", "d2", "d3", "d5"), models)
    assert plan is not None
    assert (plan.keep, plan.recent) == (3, ["d5", "d3", "d2", "d1"])  # newest first
    assert plan.referenced == ["d0", "d1", "d2", "d4", "d5", "d9"]


def test_no_version_goes_while_a_model_of_the_dataset_has_not_read_its_registry() -> None:
    models = [_model("a", "iris", ["d1"]), _model("new", "iris", [], synced=False)]
    assert retention.dataset_plan(dataset(), _status("d1"), models) is None
    unrelated = [_model("a", "iris", ["d1"]), _model("new", "other", [], synced=False)]
    assert retention.dataset_plan(dataset(), _status("d1"), unrelated) is not None


def test_the_default_bound_is_twenty_versions() -> None:
    plan = retention.dataset_plan(dataset(), _status(), [])
    assert plan is not None and (plan.keep, plan.recent, plan.referenced) == (20, [], [])


def test_a_profile_jobs_deletions_add_up_in_status_and_leave_status_versions() -> None:
    status = _status("a" * 64, "b" * 64, "c" * 64)
    result = ProfileResult(
        ok=True, version="c" * 64, pruned_versions=3, pruned_recent=["a" * 16], pruned_objects=12, pruned_bytes=3400
    )
    events = retention.record_dataset_pruned(status, result, 2, NOW)
    assert [v.version[0] for v in status.versions] == ["b", "c"]
    assert status.pruned is not None
    assert (status.pruned.versions, status.pruned.objects, status.pruned.bytes) == (3, 12, 3400)
    assert events[0].reason == "Pruned" and "3 dataset versions" in events[0].message
    later = NOW + timedelta(hours=1)
    retention.record_dataset_pruned(status, result.model_copy(update={"pruned_recent": []}), 2, later)
    assert (status.pruned.versions, status.pruned.bytes, status.pruned.last_time) == (6, 6800, later)
    assert retention.record_dataset_pruned(status, ProfileResult(ok=True, version="c"), 2, NOW) == []
    assert status.pruned.last_time == later  # nothing deleted: nothing recorded


def test_an_unmonitored_collecting_model_prunes_its_collected_rows_daily() -> None:
    m = model(serving={"collection": {"retentionDays": 7}})
    tick = retention.collection_tick(m, monitored=False, now=NOW)
    assert tick == int(NOW.timestamp()) // 86400
    assert retention.collection_tick(m, monitored=True, now=NOW) is None  # the drift checks prune
    assert retention.collection_tick(model(serving={"collection": {"enabled": False}}), False, NOW) is None
    assert retention.collection_tick(model(serving={"enabled": False}), False, NOW) is None
    midnight = datetime(2026, 1, 3, tzinfo=UTC)
    assert retention.seconds_to_next_tick(tick, NOW) == (midnight - NOW).total_seconds() + 1

    status = ModelStatus.model_validate(
        {"versions": [{"version": 4, "state": "Serving"}, {"version": 9, "state": "Validated"}]}
    )
    plan = retention.model_plan(m, status, SETTINGS.store_uri, tick)
    assert plan.model_dir == "file:///var/lib/mlops/team-a/models/iris-clf"
    assert plan.keep_versions == [4, 9] and plan.max_age_days == 7
    assert plan.partition_prefixes == [
        "file:///var/lib/mlops/team-a/collected/iris-clf",
        "file:///var/lib/mlops/team-a/labels/iris-clf",
        "file:///var/lib/mlops/team-a/shadow/iris-clf",
    ]
    assert plan.now == datetime(2026, 1, 2, tzinfo=UTC)  # the cutoff counts back from the tick's start
    assert retention.model_plan(m, status, SETTINGS.store_uri, None).partition_prefixes == []


def test_a_registry_jobs_deletions_add_up_in_model_status() -> None:
    status = ModelStatus()
    events = retention.record_model_pruned(
        status, RegistryResult(ok=True, pruned_versions=2, pruned_objects=5, pruned_bytes=900), NOW
    )
    assert status.pruned is not None and (status.pruned.versions, status.pruned.objects) == (2, 5)
    assert events[0].reason == "Pruned" and "2 versions" in events[0].message
    assert retention.record_model_pruned(status, RegistryResult(ok=True), NOW) == []
