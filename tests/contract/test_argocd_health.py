"""The Argo CD health check (charts/mlops-operator/argocd/health.lua) on recorded objects.

The fixtures under fixtures/health/ are Datasets, Models and DriftMonitors in the shapes the operator
writes: their status parses with the operator's own models, and every condition type and reason is
one the operator or its workloads write. The script runs in Lua 5.1 (what Argo CD's gopher-lua
implements) and in Lua 5.4, through lupa.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator import conditions
from mlops_operator.api.base import Resource
from mlops_operator.api.v1alpha1 import ALL_KINDS
from mlops_operator.api.v1alpha1.model import GateReason

lupa = pytest.importorskip("lupa", reason="lupa (PyPI) runs the Lua health check")

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "charts" / "mlops-operator" / "argocd" / "health.lua"
FIXTURES = Path(__file__).parent / "fixtures" / "health"
KINDS: dict[str, type[Resource]] = {cls.crd.kind: cls for cls in ALL_KINDS}

# Reasons that come from elsewhere than conditions.Reason: the gate, the workloads' own results
# (docs/workloads.md) and the rollout observer (reconcilers/observe.py).
OTHER_REASONS = {r.value for r in GateReason} | {"QualityCheckFailed", "ProgressDeadlineExceeded", "CrashLoopBackOff"}

EXPECTED: dict[str, tuple[str, str]] = {
    "dataset-new": ("Progressing", "waiting for the operator"),
    "dataset-profiling": ("Progressing", "Profiling: profile Job breast-cancer-profile-3f2a9c1d is running"),
    "dataset-ready": ("Healthy", "version 5d6e1c3f0b9a is ready"),
    "dataset-refreshing": ("Healthy", "version 5d6e1c3f0b9a is ready"),
    "dataset-failed": ("Degraded", "QualityCheckFailed: column 'mean radius' is missing 34%"),
    "dataset-invalid-spec": ("Degraded", "InvalidSpec: invalid spec: spec.source.uri"),
    "dataset-stale-generation": ("Progressing", "waiting for the operator to reconcile generation 2"),
    "model-training-first": ("Progressing", "no version has passed validation yet"),
    "model-rolling-out": ("Progressing", "version 1: 0 of 1 updated replicas are available"),
    "model-canary": ("Progressing", "version 2 Canary: step 1 (50% of pods): 12 requests, 0 5xx; judged in 41s"),
    "model-serving": ("Healthy", "serving version 1 (accuracy=0.9825)"),
    "model-serving-retraining": ("Healthy", "serving version 1 (accuracy=0.9825); training version 2"),
    "model-rolled-back": ("Healthy", "serving version 1"),
    "model-awaiting-approval": ("Suspended", "AwaitingApproval: version 1 passed validation; set spec.approvedVersion"),
    "model-training-failed": ("Degraded", "Trained OOMKilled: the trainer container was OOM-killed"),
    "model-gate-failed": ("Degraded", "Validated BelowThreshold: version 1: accuracy 0.8421 < threshold 0.9"),
    "model-rollout-failed": ("Degraded", "version 1 RolledBack (ProgressDeadlineExceeded: version 1: deployment"),
    "model-waiting-for-dataset": ("Progressing", "DatasetNotReady: Dataset breast-cancer has no ready version yet"),
    "model-invalid-spec": ("Degraded", "Trained InvalidSpec: invalid spec: spec.trainer.params.C"),
    "driftmonitor-waiting-for-baseline": ("Progressing", "BaselineNotReady"),
    "driftmonitor-model-not-found": ("Progressing", "ModelNotFound: Model breast-cancer-lr does not exist"),
    "driftmonitor-first-check-pending": ("Healthy", "WaitingForSchedule: no check has finished yet"),
    "driftmonitor-no-drift": ("Healthy", "NoDrift: no drift at the last check"),
    "driftmonitor-drift": ("Healthy", "Drift: 0.6667 of features drifted"),
    "driftmonitor-not-enough-data": ("Healthy", "NotEnoughData: 12 rows in the window"),
    "driftmonitor-check-failed": ("Degraded", "last check CheckFailed: the drift check container was OOM-killed"),
    "driftmonitor-schema-mismatch": ("Degraded", "last check SchemaMismatch: column 'mean radius' is missing"),
    "driftmonitor-invalid-spec": ("Degraded", "InvalidSpec: invalid spec: spec.schedule"),
    "batchscoring-running": ("Progressing", "JobRunning: run churn-nightly-batch-1c0ffee5: 2 of 4 shards done"),
    "batchscoring-waiting-for-model": ("Progressing", "ModelNotFound: Model churn not found in team-a"),
    "batchscoring-succeeded": ("Healthy", "run churn-nightly-batch-1c0ffee5: 1000000 rows scored by 4 shards"),
    "batchscoring-failed": ("Degraded", "SchemaMismatch: run churn-nightly-batch-1c0ffee5: SchemaMismatch: shards 2"),
}


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())
    return loaded


def to_lua(runtime: Any, value: Any) -> Any:
    """JSON → Lua as Argo CD passes it: objects and arrays become tables (arrays 1-based), null is nil."""
    if isinstance(value, dict):
        return runtime.table_from({k: to_lua(runtime, v) for k, v in value.items() if v is not None})
    if isinstance(value, list):
        return runtime.table_from([to_lua(runtime, v) for v in value])
    return value


def health(obj: dict[str, Any], version: str) -> dict[str, str]:
    module = pytest.importorskip(f"lupa.{version}")
    runtime = module.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = to_lua(runtime, obj)
    result = runtime.execute(SCRIPT.read_text())
    return {key: result[key] for key in ("status", "message") if result[key] is not None}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixtures_are_shaped_like_the_operators_objects(name: str) -> None:
    obj = fixture(name)
    KINDS[obj["kind"]].model_validate(obj)  # spec and status, with the operator's own models
    known_types = {t.value for t in conditions.Type}
    known_reasons = {r.value for r in conditions.Reason} | OTHER_REASONS
    for c in (obj.get("status") or {}).get("conditions", []):
        assert c["type"] in known_types, c
        assert c["reason"] in known_reasons, c


@pytest.mark.parametrize("version", ["lua51", "lua54"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_health(name: str, version: str) -> None:
    status, message = EXPECTED[name]
    got = health(fixture(name), version)
    assert got["status"] == status, got
    assert got["message"].startswith(message), got


def test_every_status_argo_cd_knows_is_reachable() -> None:
    assert {status for status, _ in EXPECTED.values()} == {"Healthy", "Progressing", "Suspended", "Degraded"}


def test_an_unknown_kind_is_unknown() -> None:
    obj = fixture("dataset-ready") | {"kind": "Pipeline"}
    assert health(obj, "lua51")["status"] == "Unknown"
