"""The serving PodDisruptionBudget on a real kube-apiserver: created with the Deployment when the spec
asks for one, owned by the Model, and removed when the spec drops it."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_operator.kube import PDB, NotFound
from tests.integration.reconcile_harness import Cluster, eventually
from tests.integration.test_reconcile_model import (
    serving_first_version,
)

pytestmark = pytest.mark.integration


def budget(c: Cluster, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = c.call("GET", PDB, name)
        return found
    except NotFound:
        return None


def test_a_disruption_budget_follows_the_spec(cluster: Cluster) -> None:
    c = cluster
    serving = {"replicas": 2, "disruptionBudget": {"maxUnavailable": 1}}
    serving_first_version(c, "pdb", serving=serving)
    pdb = eventually(lambda: budget(c, "pdb-server"), what="the PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    model_uid = c.get("Model", "pdb")["metadata"]["uid"]
    assert [(o["uid"], o.get("controller")) for o in pdb["metadata"]["ownerReferences"]] == [(model_uid, True)]

    c.patch("Model", "pdb", {"spec": {"serving": {"disruptionBudget": None}}})
    eventually(lambda: budget(c, "pdb-server") is None, what="the PodDisruptionBudget removed")
