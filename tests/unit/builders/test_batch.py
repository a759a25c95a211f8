"""The BatchScoring builder: its Indexed Job (golden), names, ceilings and the input's confinement."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from mlops_operator import conditions as cond
from mlops_operator.api.v1alpha1 import BatchScoring
from mlops_operator.builders import batch, limits, tenancy
from mlops_operator.settings import Settings
from tests.unit import factories as f

Golden = Callable[[str, Any], None]
TICK = datetime(2026, 1, 2, 2, 0, tzinfo=UTC)


def scoring(name: str = "iris-nightly", **spec: Any) -> BatchScoring:
    body = {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "BatchScoring",
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "uid": "44444444-4444-4444-4444-444444444444",
            "generation": 1,
        },
        "spec": {"modelRef": {"name": "iris-clf"}, "input": {"datasetRef": {"name": "iris"}}, **spec},
    }
    return BatchScoring.model_validate(body)


def rendered(resource: BatchScoring, tick: datetime | None = None) -> dict[str, Any]:
    identity = batch.run_identity(
        resource, version=3, input_uri="file:///var/lib/mlops/team-a/in/", dataset_version=None, tick=tick
    )
    name = batch.job_name(resource, identity)
    plan = batch.batch_plan(
        resource,
        version=3,
        artifact_uri="file:///var/lib/mlops/team-a/models/iris-clf/v3/model.skops",
        sha256="a" * 64,
        input_uri="file:///var/lib/mlops/team-a/in/",
        output=batch.output_dir(resource, name, f.SETTINGS),
        settings=f.SETTINGS,
    )
    return batch.batch_job(resource, plan, name, f.SETTINGS, tick)


def test_batch_job(golden: Golden) -> None:
    resource = scoring(
        shards=4,
        parallelism=2,
        backoffLimitPerIndex=3,
        maxFailedIndexes=1,
        input={"uri": "file:///var/lib/mlops/team-a/in/", "keyColumns": ["id"]},
        resources={"requests": {"cpu": "500m", "memory": "512Mi"}},
        schedule="0 2 * * *",
    )
    golden("batch-job", rendered(resource, TICK))


def test_the_job_is_indexed_with_per_index_retries_and_no_job_wide_backoff() -> None:
    spec = rendered(scoring(shards=5))["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == 5 and spec["parallelism"] == 5
    assert spec["backoffLimitPerIndex"] == 2 and spec["maxFailedIndexes"] == 0
    assert "backoffLimit" not in spec
    actions = [r["action"] for r in spec["podFailurePolicy"]["rules"]]
    assert actions == ["Ignore", "FailIndex"]  # disruptions are free; a data/spec/integrity error fails its shard
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_a_run_is_named_by_what_it_scores_and_when() -> None:
    resource = scoring()
    base = batch.run_identity(resource, version=3, input_uri="u", dataset_version="d", tick=None)
    same = batch.run_identity(scoring(runsToKeep=9), version=3, input_uri="u", dataset_version="d", tick=None)
    assert batch.job_name(resource, base) == batch.job_name(resource, same)  # runsToKeep only trims history
    others = [
        batch.run_identity(resource, version=4, input_uri="u", dataset_version="d", tick=None),
        batch.run_identity(resource, version=3, input_uri="u", dataset_version="e", tick=None),
        batch.run_identity(resource, version=3, input_uri="u", dataset_version="d", tick=TICK),
        batch.run_identity(scoring(shards=2), version=3, input_uri="u", dataset_version="d", tick=None),
    ]
    names = {batch.job_name(resource, i) for i in [base, *others]}
    assert len(names) == 5
    long = scoring("x" * 44)
    assert all(len(batch.job_name(long, i)) + len("-999") <= 63 for i in [base, *others])


def test_pods_at_once_and_the_deadline_stay_under_the_administrators_ceilings() -> None:
    settings = Settings(max_replicas=8, max_deadline_seconds=3600, max_cpu="2")
    assert limits.exceeds_ceilings(scoring(shards=100, parallelism=8).spec, settings) == []
    too_many = limits.exceeds_ceilings(scoring(shards=100).spec, settings)
    assert (
        len(too_many) == 1 and "shards (without parallelism) 100" in too_many[0] and "MLOPS_MAX_REPLICAS" in too_many[0]
    )
    slow = limits.exceeds_ceilings(
        scoring(activeDeadlineSeconds=7200, resources={"limits": {"cpu": "4"}}).spec, settings
    )
    assert any("activeDeadlineSeconds 7200" in v for v in slow) and any("resources.limits.cpu 4" in v for v in slow)


@pytest.mark.parametrize(
    ("uri", "allowed"),
    [
        ("s3://ml/store/team-a/inputs/", True),
        ("s3://ml/store/team-b/inputs/", False),
        ("s3://ml/store/team-a/../team-b/", False),
    ],
)
def test_a_prefix_input_is_confined_like_a_datasets_source(uri: str, allowed: bool) -> None:
    settings = Settings(store_uri="s3://ml/store", store_claim="", store_credentials="per-namespace")
    refused = tenancy.refusal(scoring(input={"uri": uri}), settings)
    if allowed:
        assert refused is None
    else:
        assert refused is not None and refused.reason == cond.Reason.SOURCE_NOT_ALLOWED
        assert "spec.input.uri" in refused.message


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"input": {}}, "exactly one of datasetRef and uri"),
        ({"input": {"datasetRef": {"name": "a"}, "uri": "s3://b/"}}, "exactly one of datasetRef and uri"),
        ({"input": {"uri": "s3://b/", "datasetVersion": "abc"}}, "datasetVersion needs input.datasetRef"),
        ({"shards": 2, "maxFailedIndexes": 3}, "maxFailedIndexes cannot exceed shards"),
    ],
)
def test_the_model_refuses_what_the_crd_refuses(spec: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        scoring(**spec)
