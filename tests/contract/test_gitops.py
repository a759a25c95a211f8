"""What docs/install.md tells Argo CD works: its ignoreDifferences expressions are jq paths that
remove exactly the fields the operator writes, and the argocd-cm patch carries the health script."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator import contracts

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "docs" / "install.md"
HEALTH = REPO / "charts" / "mlops-operator" / "argocd" / "health.lua"

# A Model as the API server returns it after the operator, kopf and the plugin have written to it.
MODEL: dict[str, Any] = {
    "apiVersion": "mlops.dev/v1alpha1",
    "kind": "Model",
    "metadata": {
        "name": "breast-cancer-lr",
        "namespace": "team-a",
        "generation": 3,
        "labels": {"app.kubernetes.io/instance": "ml-apps"},
        "annotations": {
            "argocd.argoproj.io/tracking-id": "ml-apps:mlops.dev/Model:team-a/breast-cancer-lr",
            "team.example/owner": "risk",
            f"{contracts.KOPF_PREFIX}/last-handled-configuration": '{"spec":{"datasetRef":{"name":"breast-cancer"}}}',
            f"{contracts.KOPF_PREFIX}/models-update": '{"started":"2026-11-29T09:00:00Z","retries":1}',
            contracts.ANNOTATION_RETRAIN_REQUESTED: "2026-11-29T11:00:00Z;drift: mean radius",
            contracts.ANNOTATION_REJECTED_VERSIONS: '{"3":"leaks the label"}',
            contracts.ANNOTATION_APPROVALS: '[{"version":2,"user":"alice","at":"2026-11-29T10:00:00Z"}]',
            contracts.ANNOTATION_TRIGGERED_BY: '{"user":"carol","groups":[],"at":"2026-11-29T09:00:00Z"}',
        },
    },
    "spec": {"datasetRef": {"name": "breast-cancer"}, "approvedVersion": 2},
}


@pytest.fixture(scope="module")
def jq() -> str:
    found = shutil.which("jq")
    if found is None:
        pytest.skip("jq is not installed (Debian package jq)")
    return found


def application() -> dict[str, Any]:
    """The Argo CD Application fragment in docs/install.md."""
    blocks = re.findall(r"```yaml\n(.*?)```", INSTALL.read_text(), flags=re.S)
    (block,) = [b for b in blocks if "ignoreDifferences" in b]
    loaded: dict[str, Any] = yaml.safe_load(block)
    return loaded


def ignore(jq: str, obj: dict[str, Any], expression: str) -> dict[str, Any]:
    """What Argo CD compares after `ignoreDifferences`: `del(<expression>)`, an error if it is no path."""
    done = subprocess.run(
        [jq, "-c", f"del({expression})"], input=json.dumps(obj), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, f"{expression}: {done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def expressions(kind: str) -> list[str]:
    (entry,) = [e for e in application()["spec"]["ignoreDifferences"] if e["kind"] == kind]
    assert entry["group"] == contracts.GROUP
    paths: list[str] = entry["jqPathExpressions"]
    return paths


def test_every_kind_ignores_kopfs_annotations(jq: str) -> None:
    assert {e["kind"] for e in application()["spec"]["ignoreDifferences"]} == {"Dataset", "Model", "DriftMonitor"}
    for kind in ("Dataset", "Model", "DriftMonitor"):
        kopf = [e for e in expressions(kind) if contracts.KOPF_PREFIX in e]
        assert kopf, kind
        for expression in kopf:
            after = ignore(jq, MODEL | {"kind": kind}, expression)["metadata"]["annotations"]
            assert not [k for k in after if k.startswith(f"{contracts.KOPF_PREFIX}/")], expression
            # everything else stays: Argo CD's own tracking, the user's, the operator's contract annotations
            assert set(after) == {k for k in MODEL["metadata"]["annotations"] if not k.startswith("kopf.")}


def test_model_expressions_remove_exactly_what_the_operator_and_plugin_write(jq: str) -> None:
    obj = MODEL
    for expression in expressions("Model"):
        obj = ignore(jq, obj, expression)
    assert obj["metadata"]["annotations"] == {
        "argocd.argoproj.io/tracking-id": "ml-apps:mlops.dev/Model:team-a/breast-cancer-lr",
        "team.example/owner": "risk",
    }
    assert obj["spec"] == MODEL["spec"]  # approvedVersion is commented out: Git owns it by default
    assert obj["metadata"]["labels"] == MODEL["metadata"]["labels"]


@pytest.mark.parametrize("annotations", [None, {}, {"team.example/owner": "risk"}])
def test_expressions_hold_when_there_is_nothing_to_remove(jq: str, annotations: dict[str, str] | None) -> None:
    obj = {"kind": "Dataset", "metadata": {"name": "d"}} | (
        {} if annotations is None else {"metadata": {"name": "d", "annotations": annotations}}
    )
    for expression in expressions("Model"):
        assert ignore(jq, obj, expression) == obj


def test_the_old_expression_was_no_path(jq: str) -> None:
    """What the docs said before: jq refuses it, and Argo CD then ignores nothing."""
    done = subprocess.run(
        [jq, 'del(.metadata.annotations | to_entries[] | select(.key | startswith("kopf.mlops.dev/")))'],
        input=json.dumps(MODEL),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0 and "Invalid path expression" in done.stderr


def test_no_finalizer_is_documented_because_the_operator_adds_none() -> None:
    text = INSTALL.read_text()
    assert contracts.FINALIZER not in text and ".metadata.finalizers" not in text


def test_the_argocd_cm_patch_carries_the_health_script(jq: str) -> None:
    (command,) = re.findall(r"kubectl -n argocd patch configmap argocd-cm .*?\)\"", INSTALL.read_text(), flags=re.S)
    program = re.search(r"'(\{data: .*?\})'", command)
    assert program is not None, command
    done = subprocess.run(
        [jq, "-n", "--rawfile", "lua", str(HEALTH), program.group(1)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"data": {"resource.customizations.health.mlops.dev_*": HEALTH.read_text()}}
