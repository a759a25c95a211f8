"""The CRDs' name rule and the builders agree: a name the API server accepts heads every child name
uncut (so two resources never share a child), and the bound is the tightest that does.

Each kind's `CRDMeta.max_name_length` is 63 minus the longest suffix its builders append. A builder
with a new child name must be listed here, and the bound adjusted if its suffix is longer.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlops_operator.api.base import DNS_1035_LABEL, Resource
from mlops_operator.api.crdgen import name_rule
from mlops_operator.api.v1alpha1 import BatchScoring, Dataset, DriftMonitor, Model
from mlops_operator.builders import batch, events, jobs, serving

BUILDERS = Path(jobs.__file__).parent
TICK = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)

# Every name the operator gives an object made for a resource, as a function of that resource.
CHILD_NAMES: dict[str, list[tuple[str, Callable[[Resource], str]]]] = {
    "Dataset": [("profile_job_name", lambda d: jobs.profile_job_name(d, 1_800_000_000))],
    "Model": [
        ("training_job_name", lambda m: jobs.training_job_name(m, jobs.training_request("h", "v", "r"))),
        ("registry_job_name", lambda m: jobs.registry_job_name(m, "digest")),
        ("events_job_name", lambda m: events.events_job_name(m, ["id-1", "id-2"])),
        ("deployment_name", serving.deployment_name),
        ("service_name", serving.service_name),
        ("candidate_deployment_name", lambda m: serving.candidate_deployment_name(m, serving.TRACK_CANARY)),
        ("shadow_service_name", serving.shadow_service_name),
    ],
    "DriftMonitor": [
        ("drift_job_name", lambda m: jobs.drift_job_name(m, TICK)),
        ("notify_job_name", lambda m: jobs.notify_job_name(m, TICK)),
    ],
    "BatchScoring": [("job_name", lambda b: batch.job_name(b, {"spec": "h", "tick": TICK.isoformat()}))],
}
KINDS: dict[str, type[Resource]] = {
    "Dataset": Dataset,
    "Model": Model,
    "DriftMonitor": DriftMonitor,
    "BatchScoring": BatchScoring,
}
SPECS = {
    "Dataset": {"source": {"uri": "sklearn://iris"}},
    "Model": {"datasetRef": {"name": "d"}, "trainer": {"estimator": "sklearn.tree.DecisionTreeClassifier"}},
    "DriftMonitor": {"modelRef": {"name": "m"}},
    "BatchScoring": {"modelRef": {"name": "m"}, "input": {"datasetRef": {"name": "d"}}},
}
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def resource(kind: str, name: str) -> Resource:
    return KINDS[kind].model_validate(
        {"kind": kind, "metadata": {"name": name, "namespace": "ns", "uid": "u-1"}, "spec": SPECS[kind]}
    )


def longest(kind: str, extra: int = 0) -> str:
    """The longest name the rule accepts for `kind` (plus `extra` characters), worst case for cutting."""
    size = KINDS[kind].crd.max_name_length + extra
    return ("m" + "x" * size)[:size]


def builders_that_name_children() -> set[str]:
    """Functions in builders/ that call meta.child_name or return a resource's own name."""
    found = set()
    for path in BUILDERS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.endswith("_name") and node.name != "child_name":
                calls = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
                if "child_name" in calls or "name" in calls:
                    found.add(node.name)
    return found


def test_every_child_name_is_covered() -> None:
    covered = {fn for names in CHILD_NAMES.values() for fn, _ in names}
    assert builders_that_name_children() == covered, "list the new child name in CHILD_NAMES and check the bound"


@pytest.mark.parametrize("kind", sorted(CHILD_NAMES))
def test_an_accepted_name_heads_every_child_name_uncut(kind: str) -> None:
    name = longest(kind)
    assert re.fullmatch(DNS_1035_LABEL, name)
    for fn, child in CHILD_NAMES[kind]:
        got = child(resource(kind, name))
        assert got == name or got.startswith(f"{name}-"), f"{fn} cut {name!r} to {got!r}"
        assert len(got) <= 63 and DNS_1123_LABEL.match(got), (fn, got)


@pytest.mark.parametrize("kind", sorted(CHILD_NAMES))
def test_the_bound_is_the_tightest(kind: str) -> None:
    name = longest(kind, extra=1)
    cut = [fn for fn, child in CHILD_NAMES[kind] if not child(resource(kind, name)).startswith(f"{name}-")]
    assert cut, f"{kind} names could be {len(name)} characters long: raise max_name_length"


@pytest.mark.parametrize("kind", sorted(CHILD_NAMES))
def test_the_rule_states_the_bound(kind: str) -> None:
    rule = name_rule(KINDS[kind].crd)
    limit = KINDS[kind].crd.max_name_length
    assert f"size(self.metadata.name) <= {limit}" in rule["rule"] and f"at most {limit} characters" in rule["message"]
