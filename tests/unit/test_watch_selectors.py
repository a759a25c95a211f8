"""The operator's reach: Jobs, Deployments and Pods are selected by the API server, not in the operator."""

from __future__ import annotations

import kopf

from mlops_operator import contracts
from mlops_operator.handlers import children, lifecycle

MANAGED = f"{contracts.LABEL_MANAGED_BY}={contracts.MANAGED_BY}"


def selectors_for(settings: kopf.OperatorSettings, group: str, version: str, plural: str) -> list[str]:
    return list(settings.watching.label_selectors.collect(kopf.Resource(group, version, plural)))


def test_child_watches_carry_a_server_side_label_selector() -> None:
    settings = kopf.OperatorSettings()
    lifecycle.configure(settings)
    assert selectors_for(settings, "batch", "v1", "jobs") == [MANAGED]
    assert selectors_for(settings, "apps", "v1", "deployments") == [MANAGED]
    serving = sorted([MANAGED, f"{contracts.LABEL_COMPONENT}={contracts.Component.SERVE}"])
    assert selectors_for(settings, "", "v1", "pods") == [",".join(serving)]


def test_nothing_else_is_narrowed() -> None:
    settings = kopf.OperatorSettings()
    lifecycle.configure(settings)
    for group, version, plural in [
        (contracts.GROUP, contracts.VERSION, "models"),
        (contracts.GROUP, contracts.VERSION, "datasets"),
        (contracts.GROUP, contracts.VERSION, "driftmonitors"),
        ("", "v1", "namespaces"),
        ("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
        ("metrics.k8s.io", "v1beta1", "pods"),  # another group's pods
    ]:
        assert selectors_for(settings, group, version, plural) == [], plural


def test_the_selectors_are_the_handlers_own_filters() -> None:
    assert children.WATCHED[("", "v1", "pods")] == children.SERVING_PODS
    assert children.label_selector({"b": "2", "a": "1"}) == "a=1,b=2"


def test_an_older_kopf_falls_back_to_the_client_side_filter() -> None:
    class Watching:
        pass

    class Settings:
        watching = Watching()

    assert children.select_server_side(Settings()) is False  # type: ignore[arg-type]
