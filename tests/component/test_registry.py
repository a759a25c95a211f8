"""The registry mirror workload against a real store directory: merge, report, rebuild, bad files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from mlops_operator import contracts
from mlops_operator.api.plans import RegistryPlan
from mlops_operator.api.results import RegistryResult
from mlops_operator.api.v1alpha1.model import GateVerdict, Metric, ModelVersion, VersionState
from mlops_operator.workloads import registry
from tests.component.conftest import run_cli, run_main

S = VersionState
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def record(n: int, state: VersionState) -> ModelVersion:
    return ModelVersion(
        version=n,
        state=state,
        dataset_version="d" * 64,
        estimator="sklearn.linear_model.LogisticRegression",
        params={"C": 1.0, "max_iter": 1000},
        metrics={"accuracy": 0.95, "f1": 0.94, "roc_auc": 0.99},
        gate=GateVerdict(passed=True, reason="Passed", message="accuracy 0.95 >= 0.9", metric=Metric.ACCURACY),
        artifact_uri=f"file:///var/lib/mlops/ns/models/m/v{n}/model.skops",
        sha256="a" * 64,
        job=f"m-train-{n:08d}",
        created_at=NOW,
        trained_at=NOW,
    )


def plan(store_root: str, versions: list[ModelVersion]) -> str:
    uri = contracts.model_registry_uri(store_root, "ns", "m")
    return RegistryPlan(namespace="ns", model="m", registry_uri=uri, versions=versions).model_dump_json(by_alias=True)


def test_versions_pruned_from_status_survive_in_the_store_and_come_back_newest_first(
    store_root: str, termination_log: Path
) -> None:
    first = run_main(
        registry.main, ["--spec", plan(store_root, [record(1, S.SERVING), record(2, S.REJECTED)])], termination_log
    )
    assert first.exit_code == 0 and first.result["stored"] == 2
    # status has pruned v1 and moved on: v1 stays in the store with its last known record
    second = run_main(
        registry.main, ["--spec", plan(store_root, [record(2, S.REJECTED), record(3, S.SERVING)])], termination_log
    )
    result = RegistryResult.model_validate(second.result)
    assert result.ok and result.stored == 3 and result.highest_version == 3
    assert [(v.version, v.state) for v in result.versions] == [(3, S.SERVING), (2, S.REJECTED), (1, S.SERVING)]

    stored = json.loads(Path(contracts.model_registry_uri(store_root, "ns", "m").removeprefix("file://")).read_text())
    assert stored["kind"] == "ModelRegistry" and [e["version"] for e in stored["versions"]] == [1, 2, 3]
    assert ModelVersion.model_validate(stored["versions"][2]) == record(3, S.SERVING)


def test_a_model_without_status_reads_what_the_store_holds_within_the_termination_message(
    store_root: str, termination_log: Path
) -> None:
    many = [record(n, S.RETIRED) for n in range(1, 41)]
    run_main(registry.main, ["--spec", plan(store_root, many)], termination_log)
    # the empty plan is what a recreated Model sends first
    done = run_cli("registry", ["--spec", plan(store_root, [])], termination_log)
    assert done.exit_code == 0, done.stderr
    assert len(done.termination_message) <= contracts.TERMINATION_MESSAGE_LIMIT
    result = RegistryResult.model_validate_json(done.termination_message)
    assert result.stored == 40 and result.highest_version == 40
    assert 3 <= len(result.versions) < 40  # trimmed from the oldest end to fit 4 KiB
    assert [v.version for v in result.versions] == list(range(40, 40 - len(result.versions), -1))


def test_an_empty_store_answers_with_nothing_to_restore(store_root: str, termination_log: Path) -> None:
    done = run_main(registry.main, ["--spec", plan(store_root, [])], termination_log)
    assert done.exit_code == 0 and done.result == {"ok": True, "stored": 0, "versions": []}


def test_a_corrupt_registry_file_is_a_store_error_not_a_crash_and_is_left_alone(
    store_root: str, termination_log: Path
) -> None:
    path = Path(contracts.model_registry_uri(store_root, "ns", "m").removeprefix("file://"))
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    done = run_main(registry.main, ["--spec", plan(store_root, [record(1, S.SERVING)])], termination_log)
    assert done.exit_code == contracts.ExitCode.STORE_ERROR
    assert done.result["ok"] is False and done.result["reason"] == "CorruptObject"
    assert path.read_text() == "{not json"  # nothing overwritten: a person can look at it

    path.write_text("[1, 2]")
    done = run_main(registry.main, ["--spec", plan(store_root, [record(1, S.SERVING)])], termination_log)
    assert done.exit_code == contracts.ExitCode.DATA_ERROR and done.result["reason"] == "RegistryUnreadable"
