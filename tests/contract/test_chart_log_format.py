"""operator.logFormat: json passes --log-format=json to the operator; the default logs text; others fail."""

from __future__ import annotations

from tests.contract.test_chart import CHART, KUBE, by_kind, render, run


def operator_args(helm: str, *values: str) -> list[str]:
    (deployment,) = by_kind(render(helm, *values), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return list(container["args"])


def test_json_logs_are_one_value_away(helm: str) -> None:
    assert "--log-format=json" in operator_args(helm, "--set", "operator.logFormat=json")
    assert not [a for a in operator_args(helm) if a.startswith("--log-format")]


def test_an_unknown_log_format_fails_the_install(helm: str) -> None:
    done = run(helm, "template", "x", str(CHART), *KUBE, "--set", "operator.logFormat=yaml")
    assert done.returncode != 0 and "logFormat" in done.stderr
