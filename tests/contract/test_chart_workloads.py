"""The chart's workloads.* values reach the operator as the MLOPS_* settings it reads, and through it
every workload pod: default limits, ceilings, the webhook's reach, and placement defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator.settings import Settings
from tests.contract.test_chart import CHART, KUBE, by_kind, render, run
from tests.unit.builders import workloads as w

FIXTURE = Path(__file__).parent / "fixtures" / "values-workloads.yaml"
VALUES: dict[str, Any] = yaml.safe_load(FIXTURE.read_text())["workloads"]


def operator_env(helm: str, *flags: str) -> dict[str, str]:
    (deployment,) = by_kind(render(helm, *flags), "Deployment")
    return {
        e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"] if "value" in e
    }


def test_the_defaults_are_the_operators_own(helm: str) -> None:
    env = operator_env(helm)
    settings = Settings.from_env(env)
    assert settings == Settings.from_env(
        {k: v for k, v in env.items() if not k.startswith(("MLOPS_MAX_", "MLOPS_DEFAULT_", "MLOPS_WEBHOOK_"))}
    )
    assert (env["MLOPS_DEFAULT_LIMIT_CPU"], env["MLOPS_DEFAULT_LIMIT_MEMORY"]) == ("1", "1Gi")
    assert (env["MLOPS_WEBHOOK_ALLOW_HTTP"], env["MLOPS_WEBHOOK_ALLOW_PRIVATE"]) == ("false", "false")
    # no placement by default: the variables are not even set
    placement = {
        "MLOPS_IMAGE_PULL_SECRETS",
        "MLOPS_NODE_SELECTOR",
        "MLOPS_TOLERATIONS",
        "MLOPS_AFFINITY",
        "MLOPS_PRIORITY_CLASS_NAME",
    }
    assert not placement & set(env)


def test_every_workloads_value_reaches_the_operators_settings(helm: str) -> None:
    settings = Settings.from_env(operator_env(helm, "-f", str(FIXTURE)))
    assert (settings.default_limit_cpu, settings.default_limit_memory) == ("500m", "768Mi")
    ceilings = VALUES["ceilings"]
    assert (settings.max_cpu, settings.max_memory) == (ceilings["cpu"], ceilings["memory"])
    assert (settings.max_replicas, settings.max_deadline_seconds) == (10, 600000)  # not 6e+05
    assert (settings.max_n_estimators, settings.max_hidden_layer_size, settings.max_cache_size_mb) == (300, 256, 512)
    assert settings.webhook_allow_http and settings.webhook_allow_private
    defaults = settings.pod_defaults.dump()
    assert defaults["imagePullSecrets"] == VALUES["imagePullSecrets"]
    assert defaults["nodeSelector"] == VALUES["nodeSelector"]
    assert defaults["tolerations"] == [{"operator": "Equal", **VALUES["tolerations"][0]}, VALUES["tolerations"][1]]
    assert defaults["affinity"] == VALUES["affinity"]
    assert defaults["priorityClassName"] == "ml-batch"


@pytest.mark.parametrize("role", w.ROLES)
def test_the_placement_defaults_reach_every_workload_pod(helm: str, role: str) -> None:
    settings = Settings.from_env(operator_env(helm, "-f", str(FIXTURE)))
    pod = w.render(settings)[role]["spec"]
    assert pod["nodeSelector"] == VALUES["nodeSelector"] and pod["priorityClassName"] == "ml-batch"
    assert pod["imagePullSecrets"] == VALUES["imagePullSecrets"] and pod["affinity"] == VALUES["affinity"]
    limits = w.container(w.render(settings)[role])["resources"]["limits"]
    if role not in ("registry", "notify"):  # fixed by the builder
        assert limits == {"cpu": "500m", "memory": "768Mi"}


@pytest.mark.parametrize(
    ("flags", "complaint"),
    [
        (("--set", "workloads.defaultLimits.cpu=lots"), "/workloads/defaultLimits/cpu"),
        (("--set", "workloads.ceilings.replicas=0"), "/workloads/ceilings/replicas"),
        (("--set", "workloads.ceilings.deadlineSeconds=1000000"), "/workloads/ceilings/deadlineSeconds"),
        (("--set", "workloads.webhook.allowHttp=maybe"), "/workloads/webhook/allowHttp"),
        (("--set", "workloads.tolerations[0].effect=NoEvict"), "/workloads/tolerations/0/effect"),
        (("--set", "workloads.imagePullSecrets[0].name=Bad_Name"), "/workloads/imagePullSecrets/0/name"),
        (("--set", "workloads.priorityClassName=Not a name"), "/workloads/priorityClassName"),
        (("--set", "workloads.affinity.nodeAfinity.x=1"), "additional properties nodeAfinity not allowed"),
    ],
)
def test_the_schema_refuses_a_wrong_workloads_value(helm: str, flags: tuple[str, ...], complaint: str) -> None:
    done = run(helm, "template", "mlops-operator", str(CHART), "-n", "mlops-system", *KUBE, *flags)
    assert done.returncode != 0
    assert complaint in done.stderr.replace("'", "").replace("- at ", ""), done.stderr
