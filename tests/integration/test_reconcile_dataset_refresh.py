"""A Dataset whose data moves, against a real kube-apiserver: the CRD admits prefix sources with a window
(and its CEL rules refuse the rest), a refresh request starts one profile Job whose plan carries the
current listing fingerprint, one Job runs at a time, an unchanged refresh records `Unchanged` and
trains nothing, a new version is recorded with its lineage and trains."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from mlops_operator import contracts
from mlops_operator.api.plans import ProfilePlan
from mlops_operator.api.results import ProfileResult
from mlops_operator.api.v1alpha1 import Dataset, Model
from mlops_operator.api.v1alpha1.source import VersionLineage
from mlops_operator.kube import ApiError
from tests.integration.reconcile_harness import Cluster, eventually, resource
from tests.integration.test_reconcile_model import model_spec, train_result, training_job

pytestmark = pytest.mark.integration
SOURCE = {"uri": "file:///var/lib/mlops/sales/events/", "format": "parquet", "window": {"last": "30d"}}


def profiled(version: str, listing: str, parent: str | None = None) -> str:
    lineage = VersionLineage(source_files=30, source_digest="d" * 64, rules_sha256="r" * 64, parent=parent,
                             rows_read=1000, rows=990)
    return ProfileResult(
        ok=True, version=version, rows=990, columns=5, target="target", task_hint="classification",
        profile_uri=f"s3://store/p/{version}/profile.json", data_uri=f"s3://store/p/{version}/data.parquet",
        listing_fingerprint=listing, lineage=lineage,
    ).model_dump_json(by_alias=True)


def profile_jobs(c: Cluster) -> list[dict[str, Any]]:
    return c.jobs(**{contracts.LABEL_DATASET: "iris", contracts.LABEL_COMPONENT: "profile"})


def unfinished(c: Cluster) -> list[dict[str, Any]]:
    return [j for j in profile_jobs(c) if not (j.get("status") or {}).get("conditions")]


def plan_of(job: dict[str, Any]) -> ProfilePlan:
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    return ProfilePlan.model_validate(json.loads(args[args.index(contracts.PLAN_FLAG) + 1]))


def request_refresh(c: Cluster, value: str) -> None:
    c.patch("Dataset", "iris", {"metadata": {"annotations": {contracts.ANNOTATION_REFRESH_REQUESTED: value}}})


def test_refreshes_unchanged_then_new_data(cluster: Cluster) -> None:
    c = cluster
    c.create(resource(Dataset, "iris", {"source": SOURCE, "schema": {"target": "target"}}))
    first = eventually(lambda: unfinished(c)[0] if unfinished(c) else None, what="first profile Job")
    assert plan_of(first).spec.source.window is not None and plan_of(first).current_listing_fingerprint is None
    c.finish_job(first, message=profiled("a" * 64, "listing-1"))
    eventually(lambda: c.status("Dataset", "iris").get("listingFingerprint") == "listing-1", what="version a")
    assert c.status("Dataset", "iris")["versions"][0]["lineage"]["sourceFiles"] == 30
    c.create(resource(Model, "clf", model_spec()))
    c.finish_job(training_job(c, "clf", 1), message=train_result(1, 0.95))
    eventually(lambda: c.status("Model", "clf").get("versions"), what="model v1")

    request_refresh(c, "2026-11-30T06:00:00Z;drift: amount")
    refresh = eventually(lambda: unfinished(c)[0] if unfinished(c) else None, what="refresh Job")
    plan = plan_of(refresh)
    assert (plan.current_version, plan.current_listing_fingerprint) == ("a" * 64, "listing-1")
    request_refresh(c, "2026-11-30T06:05:00Z;drift again")  # asked again while the first one runs
    time.sleep(2)
    assert len(unfinished(c)) == 1  # one profile Job at a time

    request_refresh(c, "2026-11-30T06:00:00Z;drift: amount")
    unchanged = ProfileResult(ok=True, unchanged=True, version="a" * 64, listing_fingerprint="listing-1")
    c.finish_job(refresh, message=unchanged.model_dump_json(by_alias=True))
    last = eventually(lambda: (c.status("Dataset", "iris").get("lastRefresh") or {}).get("outcome") and
                      c.status("Dataset", "iris")["lastRefresh"], what="refresh outcome")
    assert (last["outcome"], last["version"], last["requestedAt"]) == ("Unchanged", "a" * 64, "2026-11-30T06:00:00Z")
    time.sleep(2)
    assert len(c.model_jobs("clf")) == 1 and len(c.status("Dataset", "iris")["versions"]) == 1  # nothing trains
    assert len(profile_jobs(c)) == 2  # and the handled request starts nothing more

    request_refresh(c, "2026-12-01T06:00:00Z;drift: amount")
    newer = eventually(lambda: unfinished(c)[0] if unfinished(c) else None, what="second refresh Job")
    pending = eventually(lambda: c.status("Dataset", "iris")["lastRefresh"]["request"].startswith("2026-12-01") and
                         c.status("Dataset", "iris")["lastRefresh"], what="the new request recorded")
    assert "outcome" not in pending and "finishedAt" not in pending  # nothing left of the last refresh
    c.finish_job(newer, message=profiled("b" * 64, "listing-2", parent="a" * 64))
    eventually(lambda: c.status("Dataset", "iris").get("version") == "b" * 64, what="version b")
    last = c.status("Dataset", "iris")["lastRefresh"]
    assert (last["outcome"], last["version"]) == ("NewVersion", "b" * 64)
    assert c.status("Dataset", "iris")["versions"][-1]["lineage"]["parent"] == "a" * 64
    training_job(c, "clf", 2)  # new data: the Model trains on it


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ({"uri": "s3://sales/events.parquet", "window": {"last": "30d"}}, "a window needs a prefix source"),
        ({"uri": "sklearn://iris/", "window": {"lastPartitions": 3}}, "a window needs a prefix source"),
        ({"uri": "s3://sales/events/", "window": {"last": "30d", "lastPartitions": 3}}, "not both"),
        ({"uri": "s3://sales/events/", "window": {"last": "1 month"}}, "window.last"),
    ],
)
def test_the_crd_refuses_windows_it_cannot_apply(cluster: Cluster, source: dict[str, Any], fragment: str) -> None:
    body = resource(Dataset, "bad", {"source": source})
    with pytest.raises(ApiError) as refused:
        cluster.create(body)
    assert fragment in str(refused.value)
