"""`mlops-operator train`: fit, evaluate and save one model version.

    mlops-operator train --spec '<TrainingPlan JSON>'

1. Build the allowlisted estimator with validated hyperparameters (before reading any data).
2. Read the dataset snapshot (data_uri, written by `profile`) and, with plan.production, append
   the labelled production rows (workloads/production_rows.py); split it with the plan's seed
   (stratified for classification).
3. Fit one scikit-learn Pipeline: preprocessing (median imputation and scaling for numeric columns;
   most-frequent imputation and one-hot encoding for categorical ones) followed by the estimator, so
   the saved artifact takes raw feature columns.
4. Score it on the test split; if the plan names a champion, load it verified and score both on the
   same rows: the test split minus the rows the champion was trained on (by fingerprint).
5. Write to output_dir, each atomically: model.skops, train_rows.npy (fingerprints of the training
   rows), metrics.json, then lineage.json last (a version directory is complete once lineage.json
   exists). A retried pod whose previous attempt completed reports that attempt's result instead of
   training again.
6. Print a TrainResult and write it to the termination message.
"""

from __future__ import annotations

import logging
import math
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import orjson
import pandas as pd
import sklearn
import skops
from sklearn import metrics as skm
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import mlops_operator
from mlops_operator import store
from mlops_operator.api.plans import ChampionRef, TrainingPlan
from mlops_operator.api.results import GateSplit, TrainResult
from mlops_operator.api.v1alpha1.dataset import FeatureType
from mlops_operator.api.v1alpha1.model import Metric, Task
from mlops_operator.workloads import artifacts, common, data, production_rows
from mlops_operator.workloads.artifacts import (
    CATEGORICAL_BRANCH,
    ESTIMATOR_STEP,
    LINEAGE_FILE,
    METRICS_FILE,
    MODEL_FILE,
    NUMERIC_BRANCH,
    PREPROCESS_STEP,
    TRAIN_ROWS_FILE,
)
from mlops_operator.workloads.estimators import build_estimator

log = logging.getLogger(__name__)

# One-hot columns per categorical feature when some feature has more distinct values; the rarer ones
# then share a column. Only applied when needed: grouping infrequent categories makes the encoder
# several times slower.
MAX_ONE_HOT_CATEGORIES: Final = 50


@dataclass(frozen=True)
class Split:
    x_train: pd.DataFrame
    x_test: pd.DataFrame
    y_train: pd.Series[Any]
    y_test: pd.Series[Any]


# --- the command -----------------------------------------------------------------------------
def main(argv: Sequence[str]) -> int:
    args = common.plan_parser("train", __doc__, TrainingPlan).parse_args(list(argv))
    return common.run_plan("train", args, TrainingPlan, train, failed_result)


def failed_result(error: common.WorkloadError) -> TrainResult:
    return TrainResult(ok=False, reason=error.reason, error=error.message)


def train(plan: TrainingPlan) -> TrainResult:
    started_at, started = datetime.now(UTC), time.perf_counter()
    estimator = build_estimator(plan.estimator, plan.task, plan.params, plan.seed)
    previous = _completed_attempt(plan)
    if previous is not None:
        log.info("version %d already trained by a previous attempt; reporting it", plan.version)
        return previous

    frame = production_rows.training_frame(plan)  # the snapshot (+ labelled production rows)
    distinct: dict[str, int] = frame.attrs.get(data.DISTINCT_ATTR, {})
    features, target = feature_frame(frame, plan.target, Task(plan.task))
    split = split_data(features, target, Task(plan.task), plan.test_size, plan.seed)
    numeric, categorical = column_kinds(features)
    log.info(
        "training %s on %d rows (%d numeric, %d categorical features), testing on %d",
        plan.estimator, len(split.x_train), len(numeric), len(categorical), len(split.x_test),
    )
    wide = [c for c in categorical if distinct.get(c, MAX_ONE_HOT_CATEGORIES + 1) > MAX_ONE_HOT_CATEGORIES]
    if wide:
        log.info("grouping rare categories of %s into one column each", ", ".join(wide[:10]))
    pipeline = build_pipeline(estimator, numeric, categorical, cap_categories=bool(wide))
    fit(pipeline, split)
    scores = evaluate(pipeline, split.x_test, split.y_test, Task(plan.task))
    champion_scores, gate = score_champion(plan.champion, pipeline, split, Task(plan.task), scores)
    log.info("metrics %s; champion %s", _rounded(scores), _rounded(champion_scores or {}) or "-")

    train_rows = artifacts.dump_train_rows(data.row_fingerprints(split.x_train, split.y_train))
    model_bytes = artifacts.dump_model(pipeline)
    sha256 = store.sha256_bytes(model_bytes)
    artifact_uri = store.join(plan.output_dir, MODEL_FILE)
    result = TrainResult(
        ok=True,
        version=plan.version,
        metrics=scores,
        champion_metrics=champion_scores,
        gate_split=gate,
        artifact_uri=artifact_uri,
        sha256=sha256,
        rows_train=len(split.x_train),
        rows_test=len(split.x_test),
        features=features.shape[1],
        seconds=round(time.perf_counter() - started, 3),
    )
    store.write_bytes_atomic(artifact_uri, model_bytes)
    store.write_bytes_atomic(store.join(plan.output_dir, TRAIN_ROWS_FILE), train_rows)
    store.write_json_atomic(
        store.join(plan.output_dir, METRICS_FILE),
        {"metrics": scores, "championMetrics": champion_scores,
         "championVersion": plan.champion.version if plan.champion else None,
         "gateSplit": gate.dump() if gate else None},
    )
    lineage = lineage_record(plan, pipeline, result, len(frame), started_at, len(model_bytes))
    lineage["trainRows"] = artifacts.train_rows_record(train_rows, len(split.x_train))
    lineage["productionRows"] = frame.attrs.get(production_rows.LINEAGE_ATTR)
    store.write_json_atomic(store.join(plan.output_dir, LINEAGE_FILE), lineage)
    log.info("saved %s (sha256 %s, %d bytes)", store.redact(artifact_uri), sha256[:12], len(model_bytes))
    return result


# --- data ------------------------------------------------------------------------------------
def feature_frame(frame: pd.DataFrame, target: str, task: Task) -> tuple[pd.DataFrame, pd.Series[Any]]:
    """Feature columns ready for the pipeline and a clean target; rows without a target are dropped."""
    if target not in frame.columns:
        columns = ", ".join(repr(str(c)) for c in list(frame.columns)[:20])
        message = f"target column {target!r} is not in the dataset; columns: {columns}"
        raise common.DataError("MissingTarget", message)
    has_target = frame[target].notna()
    if not has_target.all():  # filtering copies the frame: only when rows go
        frame = frame[has_target]
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise common.DataError("EmptyData", f"the dataset has no feature columns besides the target {target!r}")
    if len(frame) == 0:
        raise common.DataError("EmptyData", f"no rows have a value for the target {target!r}")
    for column in features.columns:
        if data.feature_kind(features[column]) == FeatureType.CATEGORICAL:
            features[column] = data.as_categorical(features[column])
        else:
            # Infinity would break scaling; as missing it is imputed like any gap.
            values = features[column].to_numpy(dtype=np.float64, na_value=np.nan)
            infinite = np.isinf(values)
            if infinite.any():
                features[column] = np.where(infinite, np.nan, values)
    return features, _target(frame[target], task)


def _target(target: pd.Series[Any], task: Task) -> pd.Series[Any]:
    numeric = data.feature_kind(target) == FeatureType.NUMERIC
    if task == Task.REGRESSION:
        if not numeric:
            raise common.DataError(
                "SchemaMismatch", f"regression needs a numeric target; {target.name!r} holds text values"
            )
        return target.astype(np.float64)
    if not numeric:
        return data.as_categorical(target)
    values = target.to_numpy(dtype=np.float64)
    if not np.all(values == np.round(values)):
        raise common.DataError(
            "SchemaMismatch",
            f"classification needs class labels; target {target.name!r} holds continuous values "
            f"(use task: regression)",
        )
    return pd.Series(values.astype(np.int64), index=target.index, name=target.name)


def column_kinds(features: pd.DataFrame) -> tuple[list[str], list[str]]:
    numeric = [str(c) for c in features.columns if data.feature_kind(features[c]) == FeatureType.NUMERIC]
    categorical = [str(c) for c in features.columns if str(c) not in set(numeric)]
    return numeric, categorical


def split_data(
    features: pd.DataFrame, target: pd.Series[Any], task: Task, test_size: float, seed: int
) -> Split:
    stratify = None
    if task == Task.CLASSIFICATION:
        counts = target.value_counts()
        if len(counts) < 2:
            raise common.DataError("InsufficientData", f"the target has a single class ({counts.index[0]!r})")
        if counts.min() >= 2:
            stratify = target
        else:
            log.warning("a class has a single row; splitting without stratification")
    try:
        x_train, x_test, y_train, y_test = train_test_split(
            features, target, test_size=test_size, random_state=seed, stratify=stratify
        )
    except ValueError as exc:
        raise common.DataError("InsufficientData", f"cannot split {len(features)} rows: {exc}") from exc
    if task == Task.CLASSIFICATION and y_train.nunique() < 2:
        raise common.DataError("InsufficientData", "the training split holds a single class")
    return Split(x_train, x_test, y_train, y_test)


# --- the pipeline ------------------------------------------------------------------------------
def build_pipeline(
    estimator: BaseEstimator, numeric: list[str], categorical: list[str], cap_categories: bool = False
) -> Pipeline:
    branches: list[tuple[str, Pipeline, list[str]]] = []
    if numeric:
        numeric_steps = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
        branches.append((NUMERIC_BRANCH, numeric_steps, numeric))
    if categorical:
        one_hot = OneHotEncoder(
            handle_unknown="ignore",
            sparse_output=False,
            max_categories=MAX_ONE_HOT_CATEGORIES if cap_categories else None,
        )
        impute = SimpleImputer(strategy="most_frequent")
        categorical_steps = Pipeline([("impute", impute), ("onehot", one_hot)])
        branches.append((CATEGORICAL_BRANCH, categorical_steps, categorical))
    preprocess = ColumnTransformer(branches, remainder="drop")
    return Pipeline([(PREPROCESS_STEP, preprocess), (ESTIMATOR_STEP, estimator)])


def fit(pipeline: Pipeline, split: Split) -> None:
    try:
        pipeline.fit(split.x_train, split.y_train)
    except (ValueError, TypeError) as exc:
        # Parameters were validated up front; what remains are combinations scikit-learn refuses
        # only at fit time (e.g. a penalty the solver does not support).
        message = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else type(exc).__name__
        raise common.SpecError("InvalidHyperparameter", f"the estimator refused to fit: {message}") from exc


# --- metrics ---------------------------------------------------------------------------------
def evaluate(model: Pipeline, x_test: pd.DataFrame, y_test: pd.Series[Any], task: Task) -> dict[str, float]:
    # Preprocess once: predict and predict_proba then share the transformed matrix.
    transformed = model[:-1].transform(x_test)
    estimator = model[-1]
    if task == Task.REGRESSION:
        scores = regression_metrics(y_test.to_numpy(), estimator.predict(transformed))
    else:
        scores = classification_metrics(estimator, transformed, y_test)
    return {name: value for name, value in scores.items() if math.isfinite(value)}


def regression_metrics(truth: np.ndarray[Any, Any], predicted: np.ndarray[Any, Any]) -> dict[str, float]:
    return {
        Metric.R2.value: float(skm.r2_score(truth, predicted)),
        Metric.RMSE.value: float(skm.root_mean_squared_error(truth, predicted)),
        Metric.MAE.value: float(skm.mean_absolute_error(truth, predicted)),
    }


def classification_metrics(estimator: Any, features: Any, y_test: pd.Series[Any]) -> dict[str, float]:
    """accuracy, f1, precision, recall (binary for 2 classes, else macro); roc_auc given probabilities."""
    classes = list(estimator.classes_)
    predicted = estimator.predict(features)
    truth = y_test.to_numpy()
    averaging: dict[str, Any] = (
        {"average": "binary", "pos_label": classes[1]} if len(classes) == 2 else {"average": "macro"}
    )
    scores: dict[str, float] = {
        Metric.ACCURACY.value: float(skm.accuracy_score(truth, predicted)),
        Metric.F1.value: float(skm.f1_score(truth, predicted, zero_division=0, **averaging)),
        Metric.PRECISION.value: float(skm.precision_score(truth, predicted, zero_division=0, **averaging)),
        Metric.RECALL.value: float(skm.recall_score(truth, predicted, zero_division=0, **averaging)),
    }
    if hasattr(estimator, "predict_proba"):
        probabilities = estimator.predict_proba(features)
        try:
            if len(classes) == 2:
                auc = skm.roc_auc_score(truth == classes[1], probabilities[:, 1])
            else:
                auc = skm.roc_auc_score(truth, probabilities, multi_class="ovr", labels=classes)
            scores[Metric.ROC_AUC.value] = float(auc)
        except ValueError as exc:  # e.g. the test split lacks a class
            log.warning("roc_auc left out: %s", exc)
    return scores


def score_champion(
    champion: ChampionRef | None, challenger: Pipeline, split: Split, task: Task, scores: dict[str, float]
) -> tuple[dict[str, float] | None, GateSplit | None]:
    """The champion's metrics on the whole test split, and the gate split: champion and challenger
    (whose metrics on the whole split are `scores`) on the test rows the champion was not trained on.

    (None, None) if the champion cannot read these features. A champion whose bytes, or whose
    fingerprint file's, do not match the recorded sha256 fails the run (IntegrityError): a tampered
    store must be seen, not skipped. A champion without fingerprints (trained before they were kept)
    is compared on the whole split, flagged with `overlap_checked: false`.
    """
    if champion is None:
        return None, None
    model = artifacts.load_verified_model(champion.artifact_uri, champion.sha256)
    columns = [str(n) for n in getattr(model, "feature_names_in_", [])]
    missing = [n for n in columns if n not in split.x_test.columns]
    if not columns or missing:
        log.warning("champion v%d expects features missing from this dataset (%s); not scored",
                    champion.version, ", ".join(missing[:10]) or "unknown")
        return None, None
    whole = _champion_scores(model, split.x_test[columns], split.y_test, task, champion.version)
    if whole is None:
        return None, None
    trained_on = artifacts.load_train_rows(champion.artifact_uri, champion.sha256)
    if trained_on is None:
        log.warning("champion v%d has no training-row fingerprints: both are compared on the whole test "
                    "split, rows the champion was trained on included", champion.version)
        return whole, GateSplit(overlap_checked=False, rows_scored=len(split.y_test), metrics=dict(scores),
                                champion_metrics=dict(whole))
    # Over the champion's own features and the target, as when it was trained, whatever else is here.
    seen = data.seen_rows(data.row_fingerprints(split.x_test[columns], split.y_test), trained_on)
    gate = GateSplit(overlap_checked=True, rows_seen_by_champion=int(seen.sum()), rows_scored=int((~seen).sum()))
    if gate.rows_seen_by_champion == 0:
        gate.metrics, gate.champion_metrics = dict(scores), dict(whole)
    elif gate.rows_scored > 0:
        x_unseen, y_unseen = split.x_test[~seen], split.y_test[~seen]
        gate.metrics = evaluate(challenger, x_unseen, y_unseen, task)
        gate.champion_metrics = _champion_scores(model, x_unseen[columns], y_unseen, task, champion.version)
    log.log(logging.INFO if gate.rows_scored else logging.WARNING,
            "%d of %d test rows were seen by champion v%d in training; both are compared on the other %d",
            gate.rows_seen_by_champion, len(split.y_test), champion.version, gate.rows_scored)
    return whole, gate


def _champion_scores(
    model: Pipeline, x_test: pd.DataFrame, y_test: pd.Series[Any], task: Task, version: int
) -> dict[str, float] | None:
    try:
        return evaluate(model, x_test, y_test, task)
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("champion v%d could not be scored on this dataset: %s", version, exc)
        return None


def _rounded(scores: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in scores.items()}


# --- lineage and retries ---------------------------------------------------------------------
def plan_sha256(plan: TrainingPlan) -> str:
    return store.sha256_bytes(orjson.dumps(plan.dump(), option=orjson.OPT_SORT_KEYS))


def lineage_record(
    plan: TrainingPlan,
    pipeline: Pipeline,
    result: TrainResult,
    rows: int,
    started_at: datetime,
    artifact_bytes: int,
) -> dict[str, Any]:
    estimator = pipeline.named_steps[ESTIMATOR_STEP]
    return {
        "namespace": plan.namespace,
        "model": plan.model,
        "version": plan.version,
        "task": plan.task,
        "target": plan.target,
        "trigger": plan.trigger,
        "dataset": {"version": plan.dataset_version, "dataUri": plan.data_uri},
        "estimator": plan.estimator,
        "params": plan.params,
        "effectiveParams": {k: _jsonable(v) for k, v in estimator.get_params(deep=False).items()},
        "seed": plan.seed,
        "testSize": plan.test_size,
        "metrics": result.metrics,
        "champion": plan.champion.dump() if plan.champion else None,
        "championMetrics": result.champion_metrics,
        "artifact": {"uri": result.artifact_uri, "sha256": result.sha256, "format": "skops",
                     "bytes": artifact_bytes},
        "features": [{"name": f.name, "kind": str(f.kind)} for f in artifacts.feature_schema(pipeline)],
        "rows": {"total": rows, "train": result.rows_train, "test": result.rows_test},
        "image": plan.image,
        "code": {
            "mlopsOperator": mlops_operator.__version__,
            "scikitLearn": sklearn.__version__,
            "skops": skops.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "python": platform.python_version(),
        },
        "startedAt": started_at.isoformat(),
        "finishedAt": datetime.now(UTC).isoformat(),
        "planSha256": plan_sha256(plan),
        "result": result.dump(),
    }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)


def _completed_attempt(plan: TrainingPlan) -> TrainResult | None:
    """The result of an earlier attempt at this same plan, if it finished and its artifact verifies."""
    lineage_uri = store.join(plan.output_dir, LINEAGE_FILE)
    if not store.exists(lineage_uri):
        return None
    lineage = store.read_json(lineage_uri)
    if not isinstance(lineage, dict) or lineage.get("planSha256") != plan_sha256(plan):
        return None
    try:
        result = TrainResult.model_validate(lineage.get("result"))
    except ValueError:
        return None
    if result.artifact_uri is None or result.sha256 is None:
        return None
    if not store.exists(result.artifact_uri) or store.sha256_file(result.artifact_uri) != result.sha256:
        return None
    return result


__all__ = [
    "build_pipeline",
    "classification_metrics",
    "evaluate",
    "feature_frame",
    "main",
    "regression_metrics",
    "split_data",
    "train",
]
