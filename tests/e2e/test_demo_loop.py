"""Issues 7 and 11: the whole loop on the real cluster, the same story `make demo` narrates, with the
operator installed by Helm from the locally built image, watching one namespace.

SEA partitions of the old concept → v1 serves → the concept changes: traffic, new partitions, labels
→ live quality decays → the Dataset refreshes → v2 beats v1 through the default gate and serves
→ the concept moves back with no new file → NoNewData, no training Job.
(tests/e2e/test_concept_drift.py runs the same story with the operator in the test's process and
asserts every number; this test asserts the stages and that the installed operator ran them cleanly.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Cluster
from tests.e2e.test_concept_drift import STAGES, assert_story, load_demo_driver
from tests.e2e.test_install import Release

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def loop_release(cluster: Cluster, image: str) -> Iterator[Release]:
    rel = Release.fresh(cluster, image, "loop")
    rel.install()
    yield rel
    rel.uninstall()
    rel.remove_everything()


def test_the_closed_loop(
    cluster: Cluster, loop_release: Release, image: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig)
    driver = load_demo_driver()
    report: Any = driver.run_loop(loop_release.workloads, image, timeout=600, quiet=False)
    driver.print_summary(report)

    # every transition, in order, and what the cluster recorded at each
    assert list(report.stages) == STAGES
    assert_story(report, threshold=0.8)

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
    assert report.report_uri and os.path.basename(report.report_uri) == "report.html"

    # the latest check's report the cluster wrote renders in a real headless browser (local cluster:
    # the artifact store is a hostPath volume on this machine), with its live-quality section
    if cluster.local:
        from tests.component.test_drift_report_browser import CHROMIUM, _dump_dom

        assert CHROMIUM is not None, "chromium is installed by hack/install-prereqs.sh"
        assert report.report_host_path and Path(report.report_host_path).is_file(), report.report_host_path
        dom = _dump_dom(Path(report.report_host_path), tmp_path / "chromium-profile")
        assert dom.count("<figure") >= 3  # a plot per SEA feature
        assert "Live quality" in dom
