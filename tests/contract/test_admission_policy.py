"""The shipped ValidatingAdmissionPolicies that box in the operator's ServiceAccount (issue 12): a
golden rendering, and the image patterns they admit are the operator's own (builders.tenancy) for the
same allowlist. They are enforced on the local cluster by tests/e2e/test_tenant_attacks.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator.builders import tenancy
from tests.contract.test_chart import assert_template_matches_golden, render

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "admission-policy.yaml"
VALUES = (
    "--set", "image.tag=1.0",
    "--set", "trainer.allowedImages={registry.example.com/team-a/*,registry.example.com/trainer,"
             "registry.example.com/pinned@sha256:" + "a" * 64 + "}",
)


def policies(helm: str, *extra: str) -> list[dict[str, Any]]:
    return [o for o in render(helm, *extra) if o["kind"] == "ValidatingAdmissionPolicy"]


def test_the_shipped_policies_match_the_golden_file(helm: str) -> None:
    assert_template_matches_golden(helm, "templates/admissionpolicy.yaml", GOLDEN, *VALUES)


def test_they_pin_the_operators_account_images_accounts_and_pod_security(helm: str) -> None:
    objects = {o["metadata"]["name"]: o for o in policies(helm, *VALUES)}
    assert set(objects) == {"mlops-operator-workloads", "mlops-operator-accounts"}
    bindings = {o["metadata"]["name"]: o for o in render(helm, *VALUES) if o["kind"].endswith("PolicyBinding")}
    for name in objects:
        assert bindings[name]["spec"] == {"policyName": name, "validationActions": ["Deny"]}
    workloads = objects["mlops-operator-workloads"]["spec"]
    assert workloads["failurePolicy"] == "Fail"
    (condition,) = workloads["matchConditions"]
    assert condition["expression"] == 'request.userInfo.username == "system:serviceaccount:mlops-system:mlops-operator"'
    variables = {v["name"]: v["expression"] for v in workloads["variables"]}
    assert variables["accounts"] == "['mlops-workload', 'mlops-serving']"
    assert variables["images"].startswith("['localhost/mlops-operator:1.0', 'registry.example.com/team-a/*'")
    rules = " ".join(v["expression"] for v in workloads["validations"])
    for words in ("hostNetwork", "hostPID", "hostIPC", "privileged", "RuntimeDefault", "'ALL'", "hostPort"):
        assert words in rules, words
    assert "has(v.emptyDir) || has(v.persistentVolumeClaim) || has(v.secret))" in rules  # so no hostPath


def test_disabled_ships_none(helm: str) -> None:
    assert policies(helm, "--set", "admissionPolicy.enabled=false") == []


def _cel_matches(image: str, pattern: str) -> bool:
    """The policy's CEL image rule, transcribed (same operators, same order)."""
    if pattern.endswith("*"):
        return image.startswith(pattern[: len(pattern) - 1])
    last = pattern[pattern.rfind("/") + 1 :]
    return image == pattern or (
        "@" not in pattern and ":" not in last and (image.startswith(pattern + ":") or image.startswith(pattern + "@"))
    )


@pytest.mark.parametrize(
    "image",
    [
        "registry.example.com/team-a/x:1", "registry.example.com/team-b/x:1", "registry.example.com/trainer:2",
        "registry.example.com/trainer-evil:2", "registry.example.com/pinned@sha256:" + "a" * 64,
        "registry.example.com/pinned:latest", "localhost:5000/t:1",
    ],
)
def test_the_policy_and_the_operator_agree_on_images(image: str) -> None:
    patterns = ("registry.example.com/team-a/*", "registry.example.com/trainer",
                "registry.example.com/pinned@sha256:" + "a" * 64, "localhost:5000/t")
    assert any(_cel_matches(image, p) for p in patterns) is tenancy.image_allowed(image, patterns)


def test_golden_is_yaml() -> None:
    assert sorted(d["kind"] for d in yaml.safe_load_all(GOLDEN.read_text()) if d) == [
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicyBinding",
    ]
