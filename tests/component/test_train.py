"""`mlops-operator train` run for real: bundled datasets, a mixed-type table, champions, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from mlops_operator import contracts, store
from mlops_operator.api.plans import TrainingPlan
from mlops_operator.api.results import ProfileResult, TrainResult
from mlops_operator.api.v1alpha1.dataset import FeatureType
from mlops_operator.api.v1alpha1.model import Task
from mlops_operator.workloads import artifacts, data, profile, train
from mlops_operator.workloads.artifacts import InputFeature, load_verified_model
from mlops_operator.workloads.common import IntegrityError
from mlops_operator.workloads.estimators import ALLOWED, build_estimator

from .conftest import profile_plan, run_cli, run_train, synthetic_frame, training_plan

ExitCode = contracts.ExitCode
LOGISTIC = "sklearn.linear_model.LogisticRegression"


def _trained(plan: TrainingPlan, termination_log: Path) -> TrainResult:
    run = run_train(plan, termination_log)
    assert run.exit_code == 0, run.result
    return TrainResult.model_validate(run.result)


def _in_process_pipeline(plan: TrainingPlan) -> tuple[Pipeline, train.Split]:
    """The same steps train() takes, done here, to compare with what it saved."""
    features, target = train.feature_frame(data.read_snapshot(plan.data_uri), plan.target, plan.task)
    split = train.split_data(features, target, plan.task, plan.test_size, plan.seed)
    numeric, categorical = train.column_kinds(features)
    pipeline = train.build_pipeline(build_estimator(plan.estimator, plan.task, plan.params, plan.seed),
                                    numeric, categorical)
    return pipeline.fit(split.x_train, split.y_train), split


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, ProfileResult]:
    """A profiled table with numeric and text features and gaps: what the preprocessing is for."""
    directory = tmp_path_factory.mktemp("mixed")
    path = directory / "mixed.csv"
    synthetic_frame(3000, seed=21).to_csv(path, index=False)
    root = (directory / "store").as_uri()
    return root, profile.profile(profile_plan(root, path.as_uri()))


# --- real datasets ------------------------------------------------------------------------------
def test_breast_cancer_through_the_console_script(
    profiled_store: Any, store_root: str, termination_log: Path
) -> None:
    plan = training_plan(profiled_store("breast_cancer"), store_root, params={"C": 0.5, "max_iter": 500},
                         image="localhost/mlops-operator:test", trigger="DatasetChanged")
    run = run_cli("train", [contracts.PLAN_FLAG, plan.model_dump_json(by_alias=True)], termination_log)
    assert run.exit_code == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert json.loads(run.termination_message) == run.result
    result = TrainResult.model_validate(run.result)
    assert result.ok and result.version == 1 and result.features == 30
    assert (result.rows_train, result.rows_test) == (455, 114)
    assert set(result.metrics) == {"accuracy", "f1", "roc_auc", "precision", "recall"}
    assert result.metrics["accuracy"] > 0.9 and result.metrics["roc_auc"] > 0.95
    assert result.artifact_uri == contracts.model_artifact_uri(store_root, "ns", "m", 1)
    assert result.sha256 == store.sha256_file(result.artifact_uri)

    lineage = store.read_json(store.join(plan.output_dir, artifacts.LINEAGE_FILE))
    assert lineage["dataset"] == {"version": plan.dataset_version, "dataUri": plan.data_uri}
    assert lineage["estimator"] == LOGISTIC and lineage["params"] == {"C": 0.5, "max_iter": 500}
    assert lineage["effectiveParams"]["random_state"] == plan.seed
    assert lineage["metrics"] == result.metrics and lineage["championMetrics"] is None
    assert lineage["image"] == "localhost/mlops-operator:test" and lineage["trigger"] == "DatasetChanged"
    assert lineage["code"]["mlopsOperator"] and lineage["code"]["scikitLearn"]
    assert lineage["rows"] == {"total": 569, "train": 455, "test": 114}
    assert lineage["artifact"]["sha256"] == result.sha256
    train_rows = store.join(plan.output_dir, artifacts.TRAIN_ROWS_FILE)
    assert lineage["trainRows"] == {"file": artifacts.TRAIN_ROWS_FILE, "sha256": store.sha256_file(train_rows),
                                    "rows": 455, "scheme": artifacts.TRAIN_ROWS_SCHEME}
    assert result.gate_split is None  # no champion
    assert lineage["startedAt"] <= lineage["finishedAt"]
    assert len(lineage["features"]) == 30 and lineage["features"][0] == {"name": "mean radius", "kind": "numeric"}
    metrics_file = store.read_json(store.join(plan.output_dir, artifacts.METRICS_FILE))
    assert metrics_file["metrics"] == result.metrics


def test_wine_multiclass_with_a_random_forest(profiled_store: Any, store_root: str, termination_log: Path) -> None:
    plan = training_plan(profiled_store("wine"), store_root, "sklearn.ensemble.RandomForestClassifier",
                         params={"n_estimators": 50, "max_depth": 5})
    result = _trained(plan, termination_log)
    assert set(result.metrics) == {"accuracy", "f1", "roc_auc", "precision", "recall"}
    assert result.metrics["accuracy"] > 0.85 and result.metrics["roc_auc"] > 0.95  # ovr, macro
    model = load_verified_model(result.artifact_uri or "", result.sha256 or "")
    assert list(model.classes_) == [0, 1, 2]


def test_diabetes_regression(profiled_store: Any, store_root: str, termination_log: Path) -> None:
    plan = training_plan(profiled_store("diabetes"), store_root, "sklearn.linear_model.Ridge", task="regression",
                         params={"alpha": 0.5})
    result = _trained(plan, termination_log)
    assert set(result.metrics) == {"r2", "rmse", "mae"}
    assert 0.3 < result.metrics["r2"] < 0.7 and result.metrics["rmse"] > result.metrics["mae"] > 0


def test_saved_model_predicts_like_the_in_process_pipeline(
    mixed: tuple[str, ProfileResult], termination_log: Path
) -> None:
    root, profiled = mixed
    plan = training_plan(profiled, root, version=11)
    result = _trained(plan, termination_log)
    saved = load_verified_model(result.artifact_uri or "", result.sha256 or "")
    in_process, split = _in_process_pipeline(plan)

    np.testing.assert_array_equal(saved.predict(split.x_test), in_process.predict(split.x_test))
    np.testing.assert_allclose(saved.predict_proba(split.x_test), in_process.predict_proba(split.x_test))
    assert train.evaluate(in_process, split.x_test, split.y_test, plan.task) == result.metrics
    assert artifacts.feature_schema(saved) == [
        *(InputFeature(f"x{i}", FeatureType.NUMERIC) for i in range(6)),
        InputFeature("c0", FeatureType.CATEGORICAL),
        InputFeature("c1", FeatureType.CATEGORICAL),
    ]
    # Raw records as a server builds them: text for categoricals, unseen categories and gaps allowed.
    records = pd.DataFrame({**{f"x{i}": [0.1, np.nan] for i in range(6)},
                            "c0": ["red", "violet"], "c1": [np.nan, "blue"]})
    assert list(saved.predict(records)) == list(in_process.predict(records))


def test_same_seed_same_metrics_and_a_retry_reuses_the_finished_attempt(
    mixed: tuple[str, ProfileResult], termination_log: Path
) -> None:
    root, profiled = mixed
    first = _trained(training_plan(profiled, root, version=21), termination_log)
    second = _trained(training_plan(profiled, root, version=22), termination_log)
    assert first.metrics == second.metrics
    other_seed = _trained(training_plan(profiled, root, version=23, seed=7), termination_log)
    assert other_seed.rows_test == first.rows_test and other_seed.metrics != first.metrics

    artifact = Path(store.filesystem(first.artifact_uri or "")[1])
    written = artifact.stat().st_mtime_ns
    retried = _trained(training_plan(profiled, root, version=21), termination_log)
    assert retried == first and artifact.stat().st_mtime_ns == written


def test_champion_is_scored_on_the_same_split(mixed: tuple[str, ProfileResult], termination_log: Path) -> None:
    root, profiled = mixed
    champion = _trained(training_plan(profiled, root, version=31), termination_log)
    ref = {"version": 31, "artifactUri": champion.artifact_uri, "sha256": champion.sha256}
    challenger = _trained(
        training_plan(profiled, root, "sklearn.tree.DecisionTreeClassifier", version=32,
                      params={"max_depth": 4}, champion=ref),
        termination_log,
    )
    assert challenger.champion_metrics == champion.metrics  # same data, seed and split: same scores
    # Same split: the champion trained on none of the test rows, so both are compared on all of them.
    assert challenger.gate_split is not None and challenger.gate_split.overlap_checked
    assert (challenger.gate_split.rows_seen_by_champion, challenger.gate_split.rows_scored) == (0, challenger.rows_test)
    assert challenger.gate_split.metrics == challenger.metrics
    assert challenger.gate_split.champion_metrics == champion.metrics
    lineage = store.read_json(store.join(contracts.model_version_dir(root, "ns", "m", 32), artifacts.LINEAGE_FILE))
    assert lineage["championMetrics"] == champion.metrics and lineage["champion"]["version"] == 31


def test_tampered_champion_fails_the_run(
    mixed: tuple[str, ProfileResult], tmp_path: Path, termination_log: Path
) -> None:
    root, profiled = mixed
    champion = _trained(training_plan(profiled, root, version=41), termination_log)
    tampered = tmp_path / "tampered.skops"
    content = bytearray(Path(store.filesystem(champion.artifact_uri or "")[1]).read_bytes())
    content[len(content) // 2] ^= 0x01
    tampered.write_bytes(bytes(content))
    ref = {"version": 41, "artifactUri": tampered.as_uri(), "sha256": champion.sha256}
    run = run_train(training_plan(profiled, root, version=42, champion=ref), termination_log)
    assert (run.exit_code, run.result["reason"]) == (ExitCode.INTEGRITY_ERROR, "IntegrityError")
    assert "refusing to load" in run.result["error"]
    assert not store.exists(contracts.model_artifact_uri(root, "ns", "m", 42))


# --- the verified loader the server uses ---------------------------------------------------------
def test_loader_refuses_tampered_untrusted_and_foreign_artifacts(tmp_path: Path) -> None:
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    y = pd.Series([0, 1, 0, 1])
    pipeline = train.build_pipeline(LogisticRegression(), ["a", "b"], []).fit(X, y)
    good = tmp_path / "good.skops"
    good.write_bytes(artifacts.dump_model(pipeline))
    sha = store.sha256_file(good.as_uri())
    loaded = load_verified_model(good.as_uri(), sha.upper())
    np.testing.assert_array_equal(loaded.predict(X), pipeline.predict(X))

    tampered = bytearray(good.read_bytes())
    tampered[len(tampered) // 2] ^= 0x01
    cases: list[tuple[bytes, str | None, str]] = [
        (bytes(tampered), None, "IntegrityError"),  # one bit flipped, the recorded sha
        (sio.dumps(Pipeline([("shell", FunctionTransformer(os.system))])), "", "UntrustedArtifact"),
        (sio.dumps(LogisticRegression().fit(X, y)), "", "UntrustedArtifact"),  # not a Pipeline
        (b"\x80\x04K\x01.", "", "CorruptArtifact"),  # a pickle is never parsed as one
    ]
    for payload, recorded, reason in cases:
        path = tmp_path / f"{reason}.skops"
        path.write_bytes(payload)
        with pytest.raises(IntegrityError) as caught:
            load_verified_model(path.as_uri(), sha if recorded is None else store.sha256_bytes(payload))
        assert caught.value.reason == reason, caught.value.message
        assert caught.value.exit_code == ExitCode.INTEGRITY_ERROR


def test_every_allowlisted_estimator_saves_and_loads_with_trusted_types(tmp_path: Path) -> None:
    frame = synthetic_frame(300, seed=31, numeric=3, categorical=1)
    features, labels = train.feature_frame(frame, "target", Task.CLASSIFICATION)
    numeric, categorical = train.column_kinds(features)
    variants: list[tuple[str, dict[str, Any]]] = [(path, {}) for path in ALLOWED]
    variants += [
        ("sklearn.neighbors.KNeighborsClassifier", {"algorithm": "ball_tree", "metric": "manhattan"}),
        ("sklearn.neighbors.KNeighborsRegressor", {"algorithm": "kd_tree", "metric": "chebyshev"}),
        ("sklearn.neural_network.MLPClassifier", {"solver": "sgd", "max_iter": 20}),
    ]
    for path, params in variants:
        task = ALLOWED[path]
        target = labels if task == "classification" else features["x0"] * 2 + 1
        estimator = build_estimator(path, task, {**_small(path, task), **params}, 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings on a tiny set are beside the point
            pipeline = train.build_pipeline(estimator, numeric, categorical).fit(features, target)
        payload = artifacts.dump_model(pipeline)
        assert artifacts.untrusted_types(payload) == [], path
        model = artifacts.loads_verified_model(payload, store.sha256_bytes(payload), path)
        np.testing.assert_array_equal(model.predict(features), pipeline.predict(features), err_msg=path)


def _small(path: str, task: str) -> dict[str, Any]:
    """Few trees or iterations: the point is which types the artifact holds, not the fit."""
    defaults = build_estimator(path, task, {}, 0).get_params()
    sizes = {"n_estimators": 5, "max_iter": 10}
    return {name: value for name, value in sizes.items() if name in defaults and "Logistic" not in path}


# --- bad input ---------------------------------------------------------------------------------------
BAD_PLANS: list[tuple[str, dict[str, Any], ExitCode, str, str]] = [
    ("disallowed os.system", {"estimator": "os.system"}, ExitCode.SPEC_ERROR, "DisallowedEstimator", "not allowed"),
    ("disallowed builtins.eval", {"estimator": "builtins.eval"}, ExitCode.SPEC_ERROR, "DisallowedEstimator",
     "not allowed"),
    ("sklearn but not allowlisted", {"estimator": "sklearn.svm.OneClassSVM"}, ExitCode.SPEC_ERROR,
     "DisallowedEstimator", "not on the allowlist"),
    ("unknown estimator", {"estimator": "sklearn.linear_model.LogisticRegresion"}, ExitCode.SPEC_ERROR,
     "UnknownEstimator", "does not exist"),
    ("regressor for classification", {"estimator": "sklearn.linear_model.Ridge"}, ExitCode.SPEC_ERROR,
     "EstimatorTaskMismatch", "is for regression"),
    ("unknown param", {"params": {"C": 1.0, "max_iterations": 10}}, ExitCode.SPEC_ERROR, "InvalidHyperparameter",
     "no parameter max_iterations; valid: C, class_weight"),
    ("wrong param type", {"params": {"C": "strong"}}, ExitCode.SPEC_ERROR, "InvalidHyperparameter",
     "'C' parameter of LogisticRegression must be a float"),
    ("param out of range", {"params": {"max_iter": -5}}, ExitCode.SPEC_ERROR, "InvalidHyperparameter",
     "max_iter"),
    ("combination refused at fit", {"params": {"solver": "lbfgs", "l1_ratio": 1.0}}, ExitCode.SPEC_ERROR,
     "InvalidHyperparameter", "refused to fit"),
    ("missing target", {"target": "label"}, ExitCode.DATA_ERROR, "MissingTarget", "'label'"),
    ("missing dataset", {"dataUri": "file:///nonexistent/data.parquet"}, ExitCode.STORE_ERROR, "ObjectNotFound",
     "not found"),
]


@pytest.mark.parametrize(
    ("fields", "code", "reason", "fragment"), [r[1:] for r in BAD_PLANS], ids=[r[0] for r in BAD_PLANS]
)
def test_bad_plans(
    profiled_store: Any,
    store_root: str,
    termination_log: Path,
    capsys: pytest.CaptureFixture[str],
    fields: dict[str, Any],
    code: ExitCode,
    reason: str,
    fragment: str,
) -> None:
    plan = training_plan(profiled_store("breast_cancer"), store_root).model_dump(by_alias=True)
    plan.update(fields)
    run = run_train(TrainingPlan.model_validate(plan), termination_log)
    assert (run.exit_code, run.result["ok"], run.result["reason"]) == (code, False, reason)
    assert fragment in run.result["error"]
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr and f"train failed: {reason}" in stderr
    assert not store.exists(store.join(plan["outputDir"], artifacts.MODEL_FILE))


def test_disallowed_estimator_through_the_console_script(
    profiled_store: Any, store_root: str, termination_log: Path
) -> None:
    plan = training_plan(profiled_store("iris"), store_root, estimator="os.system")
    run = run_cli("train", ["--spec", plan.model_dump_json(by_alias=True)], termination_log)
    assert (run.exit_code, run.result["reason"]) == (ExitCode.SPEC_ERROR, "DisallowedEstimator")
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("frame", "task", "reason", "fragment"),
    [
        (pd.DataFrame({"x": np.arange(40.0), "target": np.linspace(0, 1, 40)}), "classification",
         "SchemaMismatch", "continuous values"),
        (pd.DataFrame({"x": np.arange(40.0), "target": ["a", "b"] * 20}), "regression",
         "SchemaMismatch", "numeric target"),
        (pd.DataFrame({"x": np.arange(40.0), "target": [1] * 40}), "classification",
         "InsufficientData", "single class"),
        (pd.DataFrame({"target": [0, 1] * 20}), "classification", "EmptyData", "no feature columns"),
    ],
    ids=["continuous target for a classifier", "text target for a regressor", "single class", "no features"],
)
def test_unfit_data(
    tmp_path: Path, store_root: str, termination_log: Path, frame: pd.DataFrame, task: str, reason: str,
    fragment: str,
) -> None:
    path = tmp_path / "data.parquet"
    frame.to_parquet(path)
    snapshot = ProfileResult(ok=True, version="v", data_uri=path.as_uri(), target="target")
    estimator = LOGISTIC if task == "classification" else "sklearn.linear_model.Ridge"
    run = run_train(training_plan(snapshot, store_root, estimator, task=task), termination_log)
    assert (run.exit_code, run.result["reason"]) == (ExitCode.DATA_ERROR, reason)
    assert fragment in run.result["error"]


@pytest.mark.parametrize("spec", ["{not json", '{"namespace": "ns"}', '{"model": 5}'])
def test_invalid_plan_json(spec: str, termination_log: Path) -> None:
    run = run_train_argv(["--spec", spec], termination_log)
    assert (run.exit_code, run.result["reason"]) == (ExitCode.SPEC_ERROR, "InvalidSpec")


def run_train_argv(argv: list[str], termination_log: Path) -> Any:
    from .conftest import run_main

    return run_main(train.main, argv, termination_log)


@pytest.mark.slow
def test_million_rows_profile_and_train(tmp_path: Path, store_root: str, termination_log: Path) -> None:
    frame = synthetic_frame(1_000_000, seed=41, numeric=10, categorical=3)
    path = tmp_path / "big.parquet"
    frame.to_parquet(path)
    profiled = profile.profile(profile_plan(store_root, path.as_uri()))
    assert profiled.rows == 1_000_000
    run = run_cli("train", ["--spec", training_plan(profiled, store_root).model_dump_json(by_alias=True)],
                  termination_log)
    assert run.exit_code == 0, run.stderr
    result = TrainResult.model_validate(run.result)
    assert (result.rows_train, result.rows_test, result.features) == (800_000, 200_000, 13)
    assert result.metrics["roc_auc"] > 0.8


def test_profile_and_train_through_an_object_store(object_root: str, termination_log: Path) -> None:
    """The same code on S3 and Azure Blob (local endpoints): snapshot, profile, artifact, verified load."""
    root = object_root
    profiled = profile.profile(profile_plan(root, "sklearn://breast_cancer"))
    assert profiled.data_uri is not None and profiled.data_uri.startswith(root)
    result = _trained(training_plan(profiled, root), termination_log)
    assert result.artifact_uri == contracts.model_artifact_uri(root, "ns", "m", 1)
    model = load_verified_model(result.artifact_uri, result.sha256 or "")
    assert model.predict(data.read_snapshot(profiled.data_uri).drop(columns="target")).shape == (569,)
    assert store.list_prefix(contracts.model_version_dir(root, "ns", "m", 1)) == [
        store.join(contracts.model_version_dir(root, "ns", "m", 1), name)
        for name in (artifacts.LINEAGE_FILE, artifacts.METRICS_FILE, artifacts.MODEL_FILE, artifacts.TRAIN_ROWS_FILE)
    ]


def test_workloads_never_import_the_operator_side() -> None:
    """A training pod must not load kopf or a Kubernetes client (import-linter checks the source too)."""
    probe = (
        "import sys, mlops_operator.workloads.profile, mlops_operator.workloads.train, "
        "mlops_operator.workloads.artifacts\n"
        "forbidden = ('kopf', 'kubernetes', 'mlops_operator.handlers', 'mlops_operator.reconcilers', "
        "'mlops_operator.kube', 'mlops_operator.builders')\n"
        "print([m for m in sys.modules if m.startswith(forbidden)])"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "[]"


def test_wide_text_columns_get_their_rare_categories_grouped(
    tmp_path: Path, store_root: str, termination_log: Path
) -> None:
    frame = synthetic_frame(2000, seed=51)
    frame["customer"] = [f"id-{i % 400}" for i in range(len(frame))]  # 400 distinct values
    path = tmp_path / "wide.parquet"
    frame.to_parquet(path)
    profiled = profile.profile(profile_plan(store_root, path.as_uri()))
    result = _trained(training_plan(profiled, store_root), termination_log)
    model = load_verified_model(result.artifact_uri or "", result.sha256 or "")
    encoder = model.named_steps["preprocess"].named_transformers_["categorical"].named_steps["onehot"]
    assert encoder.max_categories == train.MAX_ONE_HOT_CATEGORIES
    assert model.named_steps["preprocess"].transform(frame.head(3)).shape[1] <= 6 + 4 + 4 + 50
