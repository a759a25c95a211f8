"""The gate split: champion and challenger compared on the new version's held-out rows the champion
was not trained on (issue 11 item 6). Real data, real scikit-learn, real `train` runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_operator import contracts, store
from mlops_operator.api.plans import TrainingPlan
from mlops_operator.api.results import GateSplit, ProfileResult, TrainResult
from mlops_operator.api.v1alpha1.model import GateReason, Task, ValidationSpec
from mlops_operator.reconcilers import gates
from mlops_operator.workloads import artifacts, common, data, profile, train
from mlops_operator.workloads.artifacts import load_verified_model

from .conftest import profile_plan, run_cli, run_train, synthetic_frame, training_plan

ExitCode = contracts.ExitCode
TREE = "sklearn.tree.DecisionTreeClassifier"


def concept(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    """Four numeric features and a yes/no target with 15% label noise; `shifted` is a new concept."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows).round(4) for i in range(4)})
    signal = frame["x0"] - 1.5 * frame["x1"] + frame["x2"] if shifted else frame["x0"] + 0.5 * frame["x1"]
    flipped = rng.random(rows) < 0.15
    frame["target"] = np.where((signal > 0) ^ flipped, "yes", "no")
    return frame


def _profiled(root: str, directory: Path, name: str, frame: pd.DataFrame) -> ProfileResult:
    path = directory / f"{name}.csv"
    frame.to_csv(path, index=False)
    return profile.profile(profile_plan(root, path.as_uri()))


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, ProfileResult, ProfileResult]:
    """Version A (one concept) and version B = A plus half as many rows of a shifted concept."""
    directory = tmp_path_factory.mktemp("gate")
    root = (directory / "store").as_uri()
    a = concept(1600, seed=3, shifted=False)
    b = pd.concat([a, concept(800, seed=103, shifted=True)], ignore_index=True)
    return root, _profiled(root, directory, "a", a), _profiled(root, directory, "b", b)


def _trained(plan: TrainingPlan, termination_log: Path) -> TrainResult:
    run = run_train(plan, termination_log)
    assert run.exit_code == 0, run.result
    return TrainResult.model_validate(run.result)


def _champion(result: TrainResult, version: int) -> dict[str, Any]:
    return {"version": version, "artifactUri": result.artifact_uri, "sha256": result.sha256}


def _split(profiled: ProfileResult, plan: TrainingPlan) -> train.Split:
    assert profiled.data_uri is not None
    features, target = train.feature_frame(data.read_snapshot(profiled.data_uri), plan.target, plan.task)
    return train.split_data(features, target, plan.task, plan.test_size, plan.seed)


def _keys(features: pd.DataFrame, target: pd.Series[Any]) -> pd.Series[Any]:
    """Each row's values as text, columns in name order: a row identity that does not use the hash."""
    ordered = features[sorted(features.columns)].astype(str)
    return ordered.agg("|".join, axis=1) + "|" + target.astype(str)


def test_rows_the_champion_trained_on_are_left_out_and_both_are_scored_on_the_rest(
    versions: tuple[str, ProfileResult, ProfileResult], termination_log: Path
) -> None:
    root, a, b = versions
    # An unpruned tree memorises its training rows, label noise included: scored on them, it shines.
    champion_plan = training_plan(a, root, TREE, version=1)
    champion = _trained(champion_plan, termination_log)
    plan = training_plan(b, root, TREE, version=2, params={"max_depth": 6}, champion=_champion(champion, 1))
    challenger = _trained(plan, termination_log)

    # Which of B's held-out rows are rows A's champion was trained on, found without fingerprints.
    a_train, b_split = _split(a, champion_plan), _split(b, plan)
    seen = _keys(b_split.x_test, b_split.y_test).isin(set(_keys(a_train.x_train, a_train.y_train))).to_numpy()
    assert 0 < seen.sum() < len(seen)
    gate = challenger.gate_split
    assert gate is not None and gate.overlap_checked
    assert challenger.rows_test == len(seen)
    assert (gate.rows_seen_by_champion, gate.rows_scored) == (int(seen.sum()), int((~seen).sum()))

    # Both scores are on exactly the unseen rows; the whole-split metrics stay what they were.
    x_unseen, y_unseen = b_split.x_test[~seen], b_split.y_test[~seen]
    champion_model = load_verified_model(champion.artifact_uri or "", champion.sha256 or "")
    challenger_model = load_verified_model(challenger.artifact_uri or "", challenger.sha256 or "")
    assert gate.champion_metrics == train.evaluate(champion_model, x_unseen, y_unseen, Task.CLASSIFICATION)
    assert gate.metrics == train.evaluate(challenger_model, x_unseen, y_unseen, Task.CLASSIFICATION)
    assert challenger.metrics == train.evaluate(challenger_model, b_split.x_test, b_split.y_test, Task.CLASSIFICATION)
    assert challenger.champion_metrics == train.evaluate(
        champion_model, b_split.x_test, b_split.y_test, Task.CLASSIFICATION
    )

    # Why: on the whole split the champion looks better (it is partly scored on what it memorised);
    # on rows neither has seen, the challenger, which learnt the new concept, is the better model.
    assert challenger.champion_metrics is not None and gate.champion_metrics is not None
    assert challenger.champion_metrics["accuracy"] > challenger.metrics["accuracy"]
    assert gate.metrics["accuracy"] > gate.champion_metrics["accuracy"]
    spec = ValidationSpec.model_validate({"metric": "accuracy", "mustBeatChampion": True})
    on_whole = gates.evaluate(spec, challenger.metrics, champion_metrics=challenger.champion_metrics,
                              champion_version=1)
    on_gate_rows = gates.evaluate(spec, gate.metrics, champion_metrics=gate.champion_metrics, champion_version=1)
    assert (on_whole.passed, on_whole.reason) == (False, GateReason.NOT_BETTER)
    assert (on_gate_rows.passed, on_gate_rows.score, on_gate_rows.champion_score) == (
        True, gate.metrics["accuracy"], gate.champion_metrics["accuracy"]
    )

    # Stored with the version, too.
    saved = store.read_json(store.join(plan.output_dir, artifacts.METRICS_FILE))
    assert GateSplit.model_validate(saved["gateSplit"]) == gate
    lineage = store.read_json(store.join(plan.output_dir, artifacts.LINEAGE_FILE))
    assert TrainResult.model_validate(lineage["result"]).gate_split == gate


def test_the_overlap_is_found_on_the_champions_own_features_when_the_new_version_has_more(
    versions: tuple[str, ProfileResult, ProfileResult], tmp_path: Path, termination_log: Path
) -> None:
    root, a, b = versions
    champion = _trained(training_plan(a, root, TREE, version=5), termination_log)
    assert b.data_uri is not None
    wider = data.read_snapshot(b.data_uri)
    wider["extra"] = np.random.default_rng(7).normal(size=len(wider))
    b_wider = _profiled(root, tmp_path, "b-wider", wider)
    plan = training_plan(b_wider, root, TREE, version=6, params={"max_depth": 6}, champion=_champion(champion, 5))
    challenger = _trained(plan, termination_log)
    same_rows = _trained(training_plan(b, root, TREE, version=7, params={"max_depth": 6},
                                       champion=_champion(champion, 5)), termination_log)
    assert challenger.gate_split is not None and same_rows.gate_split is not None
    assert challenger.gate_split.overlap_checked
    # The same split of the same rows: the extra column changes nothing about which rows A trained on.
    assert challenger.gate_split.rows_seen_by_champion == same_rows.gate_split.rows_seen_by_champion > 0


def test_a_champion_without_fingerprints_is_compared_on_the_whole_split_and_flagged(
    versions: tuple[str, ProfileResult, ProfileResult], termination_log: Path
) -> None:
    root, a, b = versions
    champion = _trained(training_plan(a, root, TREE, version=11), termination_log)
    # As a model trained before fingerprints were kept: no train_rows.npy (lineage.json without trainRows).
    store.remove(store.join(contracts.model_version_dir(root, "ns", "m", 11), artifacts.TRAIN_ROWS_FILE))
    plan = training_plan(b, root, TREE, version=12, params={"max_depth": 6}, champion=_champion(champion, 11))
    challenger = _trained(plan, termination_log)
    assert challenger.gate_split == GateSplit(
        overlap_checked=False,
        rows_scored=challenger.rows_test or 0,
        metrics=challenger.metrics,
        champion_metrics=challenger.champion_metrics,
    )
    assert challenger.gate_split.rows_seen_by_champion is None
    saved = store.read_json(store.join(plan.output_dir, artifacts.METRICS_FILE))
    assert saved["gateSplit"]["overlapChecked"] is False and "rowsSeenByChampion" not in saved["gateSplit"]


def test_no_row_left_when_the_champion_was_trained_on_every_test_row(
    tmp_path: Path, store_root: str, termination_log: Path
) -> None:
    """Every row ten times over (resampled data): the champion's training split holds a copy of each."""
    repeated = pd.concat([concept(100, seed=5, shifted=False)] * 10, ignore_index=True)
    profiled = _profiled(store_root, tmp_path, "repeated", repeated)
    champion = _trained(training_plan(profiled, store_root, TREE, version=1), termination_log)
    plan = training_plan(profiled, store_root, TREE, version=2, seed=7, champion=_champion(champion, 1))
    challenger = _trained(plan, termination_log)
    assert challenger.champion_metrics  # on the whole split it is scored, as before
    assert challenger.gate_split == GateSplit(
        overlap_checked=True, rows_seen_by_champion=challenger.rows_test, rows_scored=0
    )


def test_tampered_fingerprints_fail_the_run(
    versions: tuple[str, ProfileResult, ProfileResult], termination_log: Path
) -> None:
    root, a, b = versions
    champion = _trained(training_plan(a, root, TREE, version=21), termination_log)
    rows_uri = store.join(contracts.model_version_dir(root, "ns", "m", 21), artifacts.TRAIN_ROWS_FILE)
    content = bytearray(store.read_bytes(rows_uri))
    content[-3] ^= 0x01  # one fingerprint changed: a row would no longer be recognised
    store.write_bytes_atomic(rows_uri, bytes(content))
    plan = training_plan(b, root, TREE, version=22, champion=_champion(champion, 21))
    run = run_train(plan, termination_log)
    assert (run.exit_code, run.result["reason"]) == (ExitCode.INTEGRITY_ERROR, "IntegrityError")
    assert "train_rows.npy" in run.result["error"]
    assert not store.exists(store.join(plan.output_dir, artifacts.MODEL_FILE))


# --- the fingerprints ----------------------------------------------------------------------------
def _fingerprints(path: Path) -> np.ndarray[Any, Any]:
    features, target = train.feature_frame(data.read_source(path.as_uri()).frame, "target", Task.CLASSIFICATION)
    return data.row_fingerprints(features, target)


def test_fingerprints_ignore_column_order_and_number_storage_but_not_values(tmp_path: Path) -> None:
    frame = synthetic_frame(400, seed=9)  # numeric and text features, gaps, a text target
    frame["count"] = np.arange(len(frame)) % 7
    frame.to_csv(tmp_path / "original.csv", index=False)
    reordered = frame[list(reversed(frame.columns))]
    reordered.to_csv(tmp_path / "reordered.csv", index=False)
    as_floats = frame.assign(count=frame["count"].astype(float))
    as_floats.to_csv(tmp_path / "floats.csv", index=False)  # count written as 0.0, 1.0, ...
    assert data.read_source((tmp_path / "floats.csv").as_uri()).frame["count"].dtype == np.float64
    assert data.read_source((tmp_path / "original.csv").as_uri()).frame["count"].dtype == np.int64

    original = _fingerprints(tmp_path / "original.csv")
    assert original.dtype == np.uint64 and len(np.unique(original)) == len(frame)
    np.testing.assert_array_equal(_fingerprints(tmp_path / "reordered.csv"), original)
    np.testing.assert_array_equal(_fingerprints(tmp_path / "floats.csv"), original)

    flipped = "yes" if frame.at[7, "target"] == "no" else "no"
    for column, value in (("x3", 123.5), ("c1", "violet"), ("count", 99), ("target", flipped)):
        changed = frame.copy()
        changed.at[7, column] = value
        changed.to_csv(tmp_path / "changed.csv", index=False)
        differs = _fingerprints(tmp_path / "changed.csv") != original
        assert list(np.flatnonzero(differs)) == [7], column


def test_fingerprints_are_pandas_row_hashes_of_canonical_values() -> None:
    features = pd.DataFrame({"b": [0.0, -0.0, np.nan, 1.0], "a": ["x", np.nan, "y", "x"], "n": [1, 0, 0, 1]})
    target = pd.Series([1, 0, 1, 1])
    fingerprints = data.row_fingerprints(features, target)
    canonical = pd.DataFrame({"a": ["x", np.nan, "y", "x"], "b": [0.0, 0.0, np.nan, 1.0], "n": [1.0, 0.0, 0.0, 1.0],
                              "target": [1.0, 0.0, 1.0, 1.0]})
    np.testing.assert_array_equal(fingerprints, pd.util.hash_pandas_object(canonical, index=False).to_numpy())
    # -0.0 is 0.0 and every NaN is alike; a row's position and label play no part.
    negative_nan = np.frombuffer(np.uint64(0xFFF8000000000001).tobytes(), dtype=np.float64)[0]
    again = data.row_fingerprints(features.assign(b=[-0.0, 0.0, negative_nan, 1.0]).set_axis([9, 8, 7, 6]), target)
    np.testing.assert_array_equal(again, fingerprints)
    known = np.sort(fingerprints[[0, 3]])
    assert list(data.seen_rows(fingerprints, known)) == [True, False, False, True]
    assert not data.seen_rows(fingerprints, np.array([], dtype=np.uint64)).any()


# --- the termination message ------------------------------------------------------------------------
def test_the_result_with_a_gate_split_stays_within_the_termination_message(
    tmp_path: Path, termination_log: Path
) -> None:
    """A multiclass model (every metric) with a champion, under a long store path, through the console script."""
    deep = tmp_path.joinpath(*(c * 200 for c in "abc"))
    root = (deep / "store").as_uri()
    profiled = profile.profile(profile_plan(root, "sklearn://wine"))
    champion = _trained(training_plan(profiled, root, TREE, version=1), termination_log)
    plan = training_plan(profiled, root, "sklearn.ensemble.RandomForestClassifier", version=2,
                         params={"n_estimators": 20}, champion=_champion(champion, 1))
    run = run_cli("train", [contracts.PLAN_FLAG, plan.model_dump_json(by_alias=True)], termination_log)
    assert run.exit_code == 0, run.stderr
    assert len(run.termination_message) <= contracts.TERMINATION_MESSAGE_LIMIT
    result = TrainResult.model_validate_json(run.termination_message)
    assert json.loads(run.termination_message) == run.result  # nothing was trimmed
    assert result.gate_split is not None and len(result.gate_split.metrics) == 5
    assert len(result.artifact_uri or "") > 600


def test_the_largest_result_train_writes_fits_untrimmed() -> None:
    """Every field at its largest: a 1024-character URI, five metrics three times, all counts."""
    metrics = {name: 1 / 3 + i for i, name in enumerate(("accuracy", "f1", "precision", "recall", "roc_auc"))}
    result = TrainResult(
        ok=True, version=2**31, metrics=metrics, champion_metrics=metrics, artifact_uri="s3://" + "x" * 1019,
        sha256="f" * 64, rows_train=10**10, rows_test=10**10, features=10**4, seconds=1e6 / 3,
        gate_split=GateSplit(overlap_checked=True, rows_seen_by_champion=10**10, rows_scored=10**10,
                             metrics=metrics, champion_metrics=metrics),
    )
    encoded = common.encode_result(result)
    assert len(encoded) < contracts.TERMINATION_MESSAGE_LIMIT - 1024  # room to spare
    assert TrainResult.model_validate_json(encoded) == result
