"""Chart.yaml tells the truth: the Kubernetes it needs, the license, and Artifact Hub's view of the CRDs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from mlops_operator.api import crdgen
from mlops_operator.api.base import DNS_1035_LABEL
from mlops_operator.api.v1alpha1 import ALL_KINDS

REPO = Path(__file__).resolve().parents[2]
CHART: dict[str, Any] = yaml.safe_load((REPO / "charts" / "mlops-operator" / "Chart.yaml").read_text())
PYPROJECT: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())
ANNOTATIONS: dict[str, str] = CHART["annotations"]
CAPABILITIES = {"Basic Install", "Seamless Upgrades", "Full Lifecycle", "Deep Insights", "Auto Pilot"}


def listed(annotation: str) -> list[dict[str, Any]]:
    """Artifact Hub's list annotations are YAML documents inside a string."""
    value = yaml.safe_load(ANNOTATIONS[annotation])
    assert isinstance(value, list), annotation
    return value


def test_kubernetes_version_and_app_version() -> None:
    assert CHART["kubeVersion"] == ">=1.32.0-0"  # CEL optionalOldSelf in the CRDs' name rule
    assert CHART["appVersion"] == PYPROJECT["project"]["version"]


def test_license_is_apache_everywhere() -> None:
    assert ANNOTATIONS["artifacthub.io/license"] == "Apache-2.0" == PYPROJECT["project"]["license"]
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text


def test_artifact_hub_lists_the_crds_as_generated() -> None:
    crds = {c["metadata"]["name"]: c for c in map(crdgen.crd_for, ALL_KINDS)}
    entries = listed("artifacthub.io/crds")
    assert sorted(e["name"] for e in entries) == sorted(crds)
    for entry in entries:
        crd = crds[entry["name"]]
        assert entry["kind"] == entry["displayName"] == crd["spec"]["names"]["kind"]
        (version,) = crd["spec"]["versions"]
        assert entry["version"] == version["name"]
        assert entry["description"] == version["schema"]["openAPIV3Schema"]["description"]


def test_artifact_hub_examples_are_valid_resources() -> None:
    kinds = {cls.crd.kind: cls for cls in ALL_KINDS}
    examples = listed("artifacthub.io/crdsExamples")
    assert sorted(e["kind"] for e in examples) == sorted(kinds)
    for example in examples:
        cls = kinds[example["kind"]]
        cls.model_validate(example)
        name = example["metadata"]["name"]
        assert re.fullmatch(DNS_1035_LABEL, name) and len(name) <= cls.crd.max_name_length


def test_operator_annotations_links_and_people() -> None:
    assert ANNOTATIONS["artifacthub.io/operator"] == "true"
    assert ANNOTATIONS["artifacthub.io/operatorCapabilities"] in CAPABILITIES
    for link in listed("artifacthub.io/links"):
        assert set(link) == {"name", "url"} and link["url"].startswith("https://")
    assert CHART["home"].startswith("https://") and all(s.startswith("https://") for s in CHART["sources"])
    assert CHART["maintainers"] and all(m["name"] for m in CHART["maintainers"])
