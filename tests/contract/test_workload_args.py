"""What a Job builder renders is exactly what its workload parses.

Each plan-driven Job's container args go through the console script's dispatcher (`cli.main`) to the
workload's own command line; the workload's work function is replaced by one that records the plan,
which must equal the plan the builder made.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mlops_operator import cli, contracts
from mlops_operator.api.base import CRModel
from mlops_operator.api.plans import NotifyPlan, RegistryPlan
from mlops_operator.api.results import DriftResult, NotifyResult, ProfileResult, RegistryResult, TrainResult
from mlops_operator.api.v1alpha1.model import ModelVersion, VersionState
from mlops_operator.builders import jobs
from mlops_operator.settings import Settings
from mlops_operator.workloads import drift, notify, profile, registry, train
from tests.unit import factories as f

TICK = datetime(2026, 1, 2, 3, 0, 0, tzinfo=UTC)
SETTINGS = Settings(image="localhost/mlops-operator:test", webhook_allow_http=True)


def _profile() -> tuple[dict[str, Any], CRModel]:
    dataset = f.dataset()
    return jobs.profile_job(dataset, SETTINGS, 0), jobs.profile_plan(dataset, SETTINGS)


def _train() -> tuple[dict[str, Any], CRModel]:
    model = f.model()
    plan = jobs.training_plan(
        model, version=2, target="target", dataset_version="v", data_uri="file:///d", champion=None,
        trigger="initial", settings=SETTINGS,
    )
    return jobs.training_job(model, plan, jobs.training_request("h", "v", None), SETTINGS), plan


def _drift() -> tuple[dict[str, Any], CRModel]:
    monitor = f.monitor(features=[{"name": "petal_width", "test": "psi"}])
    plan = jobs.drift_plan(monitor, tick=TICK, profile_uri="file:///p.json", settings=SETTINGS)
    return jobs.drift_job(monitor, plan, TICK, SETTINGS), plan


def _registry() -> tuple[dict[str, Any], CRModel]:
    model = f.model()
    versions = [ModelVersion(version=1, state=VersionState.APPROVED, artifact_uri="file:///m", sha256="a" * 64)]
    registry_uri = contracts.model_registry_uri(SETTINGS.store_uri, model.namespace, model.name)
    plan = RegistryPlan(namespace=model.namespace, model=model.name, registry_uri=registry_uri, versions=versions)
    return jobs.registry_job(model, versions, SETTINGS), plan


def _notify() -> tuple[dict[str, Any], CRModel]:
    monitor = f.monitor(action={"webhook": {"secretRef": {"name": "hooks", "key": "url"}}})
    payload = {"text": "drift"}
    return jobs.notify_job(monitor, payload, TICK, SETTINGS), NotifyPlan(payload=payload, allow_http=True)


CASES: dict[str, tuple[Callable[[], tuple[dict[str, Any], CRModel]], Any, str, CRModel]] = {
    "profile": (_profile, profile, "profile", ProfileResult(ok=True)),
    "train": (_train, train, "train", TrainResult(ok=True)),
    "drift": (_drift, drift, "check", DriftResult(ok=True, verdict="NoDrift")),
    "registry": (_registry, registry, "sync", RegistryResult(ok=True)),
    "notify": (_notify, notify, "notify", NotifyResult(ok=True)),
}


@pytest.mark.parametrize("command", sorted(CASES))
def test_the_rendered_args_parse_into_the_builders_plan(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    render, module, work_name, result = CASES[command]
    job, plan = render()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["mlops-operator"]
    assert container["args"][:2] == [command, contracts.PLAN_FLAG] and len(container["args"]) == 3

    received: list[CRModel] = []

    def work(plan: CRModel, *_: Any) -> CRModel:
        received.append(plan)
        return result

    monkeypatch.setattr(module, work_name, work)
    monkeypatch.setenv(contracts.ENV_TERMINATION_LOG, str(tmp_path / "termination-log"))
    assert cli.main(container["args"]) == contracts.ExitCode.OK
    assert received == [plan]


def test_every_workload_is_a_cli_command() -> None:
    assert set(CASES) <= set(cli.COMMANDS)


@pytest.mark.parametrize("command", sorted(CASES))
def test_the_plan_is_the_whole_command_line(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """No workload takes --store (the plans carry full URIs) or a second way to say what to do."""
    with pytest.raises(SystemExit) as exited:
        cli.main([command, contracts.PLAN_FLAG, "{}", "--store", "file:///var/lib/mlops"])
    assert exited.value.code == contracts.ExitCode.USAGE
    assert "unrecognized arguments: --store" in capsys.readouterr().err
