"""Annotations people write cannot break a reconcile: bad entries are ignored, and said so once."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from mlops_operator import contracts
from mlops_operator.api.v1alpha1.model import Model, ModelStatus, ModelVersion, VersionState
from mlops_operator.builders import jobs
from mlops_operator.reconcilers import annotated
from mlops_operator.reconcilers.context import Key
from mlops_operator.reconcilers.model import serving, training
from mlops_operator.reconcilers.model.children import ModelRun
from mlops_operator.reconcilers.skeleton import Run
from tests.unit import factories as f
from tests.unit.reconcilers.fake_kube import FakeKube
from tests.unit.reconcilers.test_tenant_safety import NS, context

REJECTED, RETRAIN = contracts.ANNOTATION_REJECTED_VERSIONS, contracts.ANNOTATION_RETRAIN_REQUESTED
DEEP = "[" * 100_000 + "]" * 100_000  # past json's recursion limit


@pytest.mark.parametrize(
    ("raw", "kept", "ignored"),
    [
        ('{"²": "x", "3": "leaks"}', {3: "leaks"}, "'²'"),
        (json.dumps({"9" * 5000: "x", "2": "old"}), {2: "old"}, "'99999"),
        ('{"-1": "x", " 4": "x", "4\\n": "x", "1e3": "x", "07": "ok"}', {7: "ok"}, "'-1'"),
        ('{"5": {"nested": 1}}', {5: ""}, None),
        ("[1, 2]", {}, "must be a JSON object"),
        ("not json", {}, "is not JSON"),
        (DEEP, {}, "is not JSON"),
    ],
)
def test_rejected_versions_keep_what_is_well_formed(raw: str, kept: dict[int, str], ignored: str | None) -> None:
    versions, problems = annotated.rejected_versions({REJECTED: raw})
    assert versions == kept
    if ignored is None:
        assert problems == []
    else:
        assert len(problems) == 1 and ignored in problems[0] and len(problems[0]) < 600


@pytest.mark.parametrize(
    "value",
    ["garbage", "²;x", "9" * 5000, "9999-99-99T00:00:00Z;x", "x" * 600, "2026-01-01T00:00:00Z;" + "r" * 600, DEEP],
)
def test_a_malformed_retrain_request_is_ignored_with_a_reason(value: str) -> None:
    request, problem = annotated.retrain_request({RETRAIN: value})
    assert request is None and problem is not None and RETRAIN in problem and len(problem) < 400


def test_a_well_formed_retrain_request_is_read_and_a_zoneless_time_is_utc() -> None:
    assert annotated.retrain_request({RETRAIN: "2026-01-01T00:00:00Z;new data"}) == (
        "2026-01-01T00:00:00Z;new data",
        None,
    )
    assert annotated.request_time("2026-01-01T00:00:00;x") == datetime(2026, 1, 1, tzinfo=UTC)
    # a zoneless request against a zoned one compares instead of raising TypeError
    assert training.not_older("2026-01-01T00:00:01;a", "2026-01-01T00:00:00Z;b")


def test_a_garbage_retrain_request_starts_no_training() -> None:
    model_ = f.model(annotations={RETRAIN: "9" * 5000})
    work = ModelStatus(versions=[ModelVersion(version=1, state=VersionState.SERVING)])
    work.training_spec_hash, work.trained_dataset_version = jobs.training_spec_hash(model_), "v1"
    decision = training.decide_training(model_, work, work.training_spec_hash, "v1", f.NOW)
    assert decision.trigger is None


def test_version_numbers_are_ascii_digits_of_sane_length() -> None:
    assert [annotated.version_number(v) for v in ("12", "²", "١٢", "9" * 10, "", None, 3)] == [
        12, None, None, None, None, None, None,
    ]  # fmt: skip


def test_the_model_posts_one_warning_per_ignored_annotation_and_keeps_reconciling() -> None:
    model_ = f.model(annotations={REJECTED: '{"²": "x", "2": "bad"}', RETRAIN: "now please"})
    events = annotated.problems(model_.annotations)
    assert [e.reason for e in events] == ["AnnotationIgnored", "AnnotationIgnored"]
    assert all(e.type == "Warning" for e in events)
    kube = FakeKube()
    run = serving_run_with(kube, model_)
    serving.apply_approvals(run)  # the well-formed entry still rejects version 2
    assert run.work.versions[1].state == VersionState.REJECTED
    for event in events * 3:  # re-asserted every reconcile: one Event each
        asyncio.run(kube.event(model_.dump(), event.type, event.reason, event.message, now=f.NOW))
    assert sum(1 for m, p in kube.writes() if m == "POST" and p.endswith("/events")) == 2


def serving_run_with(kube: FakeKube, model_: Model) -> ModelRun:
    work = ModelStatus(
        versions=[
            ModelVersion(version=1, state=VersionState.SERVING, artifact_uri="file:///a", sha256="a" * 64),
            ModelVersion(version=2, state=VersionState.VALIDATED, artifact_uri="file:///b", sha256="b" * 64),
        ]
    )
    return Run(context(kube), Key("Model", NS, model_.name), model_.dump(), model_, work, f.NOW)
