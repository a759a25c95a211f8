"""Issue 7: the whole loop on the real cluster, the same scenario `make demo` narrates.

data → train → validate → approve → serve → collect → detect drift → NoNewData → retrain → gate,
with the operator installed by Helm from the locally built image, watching one namespace.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.e2e.conftest import Cluster
from tests.e2e.test_install import Release

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def load_demo_driver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_loop", REPO / "hack" / "demo_loop.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo_loop"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def loop_release(cluster: Cluster, image: str) -> Iterator[Release]:
    rel = Release.fresh(cluster, image, "loop")
    rel.install()
    yield rel
    rel.uninstall()
    rel.remove_everything()


def test_the_closed_loop(
    cluster: Cluster, loop_release: Release, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig)
    driver = load_demo_driver()
    report: Any = driver.run_loop(loop_release.workloads, timeout=900, quiet=False)

    # every transition, in order
    stages = list(report.stages)
    assert stages == [
        "dataset_ready", "v1_training", "v1_serving", "no_drift", "drift", "no_new_data", "retrain_job", "v2_judged"
    ]
    assert report.verdicts == ["NoDrift", "Drift"]
    assert len(report.drifted_features) >= 15, report.drifted_features  # every feature was shifted by 35 %

    # the drift found no unseen rows to retrain on: no training Job until a person asked for one
    assert report.jobs_after_drift == 1
    # the registry: v2, trained on the same rows at a person's request, cannot beat v1 on them, and the
    # default gate (mustBeatChampion) keeps v1 serving
    states = {v["version"]: v["state"] for v in report.versions}
    assert states == {1: "Serving", 2: "Rejected"}, states
    assert report.retrain_reason and "demo" in report.retrain_reason, report.retrain_reason
    v2 = next(v for v in report.versions if v["version"] == 2)
    assert not v2["gate"]["passed"] and v2["gate"]["championVersion"] == 1, v2["gate"]
    assert v2["gate"]["reason"] == "NotBetterThanChampion", v2["gate"]
    assert v2["gate"]["delta"] == 0 and v2["gate"]["championScore"] == v2["gate"]["score"], v2["gate"]

    # the served predictions are the model's, and nothing failed on the way
    assert report.requests_failed == 0 and set(report.status_codes) == {"200"}, report.status_codes
    assert report.reference_checked >= 500
    assert report.reference_correct / report.reference_checked >= 0.9
    assert report.report_uri and report.report_uri.endswith("report.html")

    pods = cluster.json("-n", loop_release.workloads, "get", "pods")["items"]
    restarts = {
        p["metadata"]["name"]: cs.get("restartCount", 0)
        for p in pods
        for cs in p["status"].get("containerStatuses", [])
    }
    assert all(n == 0 for n in restarts.values()), restarts
    failed_jobs = [
        j["metadata"]["name"]
        for j in cluster.json("-n", loop_release.workloads, "get", "jobs")["items"]
        if any(c["type"] == "Failed" and c["status"] == "True" for c in j["status"].get("conditions", []))
    ]
    assert failed_jobs == []
    log = loop_release.operator_log()
    assert "Traceback" not in log and " ERROR " not in log and "[ERROR" not in log, log[-3000:]
    assert os.path.basename(report.report_uri) == "report.html"

    # the drift report the cluster wrote renders in a real headless browser (local cluster: the
    # artifact store is a hostPath volume on this machine)
    if cluster.local:
        from tests.component.test_drift_report_browser import CHROMIUM, _dump_dom

        assert CHROMIUM is not None, "chromium is installed by hack/install-prereqs.sh"
        assert report.report_host_path and Path(report.report_host_path).is_file(), report.report_host_path
        dom = _dump_dom(Path(report.report_host_path), tmp_path / "chromium-profile")
        assert 'id="verdict" class="verdict-Drift"' in dom
        assert dom.count("<figure") == 30 and dom.count("<svg") == 30  # a plot per breast-cancer feature
        assert dom.count('<tr class="drifted"') >= 15
