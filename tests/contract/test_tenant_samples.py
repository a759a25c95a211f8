"""manifests/samples/tenant/: a ResourceQuota and a LimitRange for a team namespace, documented,
that parse, and that agree with what the operator renders (its default limits and requests, its
ceilings) so that no workload pod within the ceilings is refused by them.

The API server's own validation of these objects: tests/integration/test_crd_admission.py
(`kubectl apply --dry-run=server`); a client-side dry run needs a server too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_operator.api.base import RESOURCE_NAME, Resources, parse_quantity
from mlops_operator.settings import Settings
from tests.unit.builders import workloads as w

TENANT = Path(__file__).resolve().parents[2] / "manifests" / "samples" / "tenant"
QUOTA_SCOPES = ("requests.", "limits.", "count/")
QUOTA_PLAIN = {"pods", "services", "persistentvolumeclaims", "configmaps", "secrets"}


def documents() -> dict[str, dict[str, Any]]:
    docs = [d for path in sorted(TENANT.glob("*.yaml")) for d in yaml.safe_load_all(path.read_text()) if d]
    return {d["kind"]: d for d in docs}


@pytest.fixture(scope="module")
def objects() -> dict[str, dict[str, Any]]:
    return documents()


def container_limits(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (container,) = [item for item in objects["LimitRange"]["spec"]["limits"] if item["type"] == "Container"]
    return dict(container)


def test_a_quota_and_a_limit_range_applied_with_the_namespace_and_commented(objects: dict[str, dict[str, Any]]) -> None:
    assert set(objects) == {"ResourceQuota", "LimitRange", "NetworkPolicy"}  # the policy: test_network_policy
    for obj in objects.values():
        assert obj["apiVersion"] in ("v1", "networking.k8s.io/v1") and "namespace" not in obj["metadata"]
    text = "".join(p.read_text() for p in TENANT.glob("*.yaml"))
    assert text.count("\n#") >= 10, "document the samples: why each number, what breaks if changed"


def test_every_quota_names_a_resource_kubernetes_quotas(objects: dict[str, dict[str, Any]]) -> None:
    for name, value in objects["ResourceQuota"]["spec"]["hard"].items():
        parse_quantity(str(value))
        assert name in QUOTA_PLAIN or name.startswith(QUOTA_SCOPES), name
        if name.startswith("limits.") and "/" in name:
            pytest.fail(f"{name}: extended resources are quota'd as requests.<name> only")


def test_the_limit_range_repeats_the_operators_defaults(objects: dict[str, dict[str, Any]]) -> None:
    container = container_limits(objects)
    settings = Settings()
    assert container["default"] == {"cpu": settings.default_limit_cpu, "memory": settings.default_limit_memory}
    assert container["defaultRequest"] == Resources().requests
    for values in (container["default"], container["defaultRequest"], container["max"]):
        for name, value in values.items():
            assert re.match(RESOURCE_NAME, name) and parse_quantity(str(value)) > 0


def test_the_limit_range_admits_everything_within_the_operators_ceilings(objects: dict[str, dict[str, Any]]) -> None:
    maximum = container_limits(objects)["max"]
    settings = Settings()
    assert parse_quantity(maximum["cpu"]) >= parse_quantity(settings.max_cpu)
    assert parse_quantity(maximum["memory"]) >= parse_quantity(settings.max_memory)
    # a max makes a limit compulsory: only for what every workload container has a limit for
    assert set(maximum) <= {"cpu", "memory"}


@pytest.mark.parametrize("role", w.ROLES)
def test_every_workload_pod_fits_the_range_and_the_quota(objects: dict[str, dict[str, Any]], role: str) -> None:
    resources = w.container(w.render(Settings())[role])["resources"]
    maximum = container_limits(objects)["max"]
    hard = objects["ResourceQuota"]["spec"]["hard"]
    for name, limit in resources["limits"].items():
        assert parse_quantity(limit) <= parse_quantity(maximum[name])
        assert parse_quantity(limit) <= parse_quantity(hard[f"limits.{name}"])
    for name, request in resources.get("requests", {}).items():
        assert parse_quantity(request) <= parse_quantity(hard[f"requests.{name}"])


def test_the_claim_the_operator_creates_fits(objects: dict[str, dict[str, Any]]) -> None:
    (claims,) = [item for item in objects["LimitRange"]["spec"]["limits"] if item["type"] == "PersistentVolumeClaim"]
    size = parse_quantity(Settings().store_size)
    assert size <= parse_quantity(claims["max"]["storage"])
    assert size <= parse_quantity(objects["ResourceQuota"]["spec"]["hard"]["requests.storage"])
