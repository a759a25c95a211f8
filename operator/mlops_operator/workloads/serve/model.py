"""The served model: its input schema, and a fast path that predicts without pandas.

A trained artifact is a scikit-learn Pipeline (ColumnTransformer preprocessing + estimator) fitted on
a DataFrame. `pipeline.predict(DataFrame)` costs ~0.5 ms of pandas and validation per call even for
one row, more than the whole HTTP round trip. When every feature is numeric, `ServedModel` runs the
same fitted steps on a float64 ndarray instead: each ColumnTransformer branch on its column slice,
the results stacked in the same order, then the final estimator (as a kernel, kernels.py, where one
reproduces its predict without scikit-learn's per-call validation). The numbers are the same
operations on the same values; `_probe_fast_path` checks this at load time against the reference
path and turns the fast path off on any difference (the component tests check it on real data too).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from mlops_operator.workloads.serve.kernels import fast_final

log = logging.getLogger(__name__)

Matrix = NDArray[np.float64]
_ENCODER_NAMES = frozenset({"OneHotEncoder", "OrdinalEncoder", "TargetEncoder"})


@dataclass(frozen=True)
class Feature:
    name: str
    categorical: bool

    @property
    def datatype(self) -> str:
        return "BYTES" if self.categorical else "FP64"


@dataclass
class Batch:
    """Validated input rows, in the model's feature order.

    `matrix` is set when every feature is numeric (float64, shape rows x features, NaN = missing);
    otherwise `columns` holds one array per feature (float64 or object of str/NaN).
    """

    rows: int
    matrix: Matrix | None = None
    columns: list[NDArray[Any]] | None = None


@dataclass
class Prediction:
    labels: NDArray[Any]
    proba: NDArray[np.float64] | None = None


class ServedModel:
    def __init__(self, name: str, version: str, estimator: Any) -> None:
        self.name = name
        self.version = version
        self.estimator = estimator
        self.features = _infer_features(estimator)
        self.feature_names = tuple(f.name for f in self.features)
        self.all_numeric = not any(f.categorical for f in self.features)
        self.has_names = hasattr(estimator, "feature_names_in_")
        self.has_proba = callable(getattr(estimator, "predict_proba", None))
        classes = getattr(estimator, "classes_", None)
        self.classes: NDArray[Any] | None = None if classes is None else np.asarray(classes)
        try:
            self._fast = _compile_fast_path(estimator) if self.all_numeric else None
        except Exception:  # an estimator layout we do not know: serve it the ordinary way
            log.warning("no fast path for this model layout", exc_info=True)
            self._fast = None
        if self._fast is not None and not self._probe_fast_path():
            log.warning("fast path disagrees with the pipeline on probe rows; using the pipeline as is")
            self._fast = None

    def seconds_per_call(self) -> float:
        """Median CPU time of a one-row prediction: tells a cheap model from a model-bound one.

        CPU time of this thread, not wall time, so a busy machine does not make a cheap model look
        expensive."""
        row = Batch(rows=1, matrix=_probe_location(self.estimator, len(self.features))[0].reshape(1, -1))
        if not self.all_numeric:
            return float("nan")
        timings = []
        for _ in range(5):
            started = time.thread_time()
            try:
                self.predict(row)
            except Exception:
                return float("nan")
            timings.append(time.thread_time() - started)
        return float(np.median(timings))

    @property
    def uses_fast_path(self) -> bool:
        return self._fast is not None

    def frame(self, batch: Batch) -> pd.DataFrame | Matrix:
        """What the reference path hands to the estimator: a DataFrame if it was fitted on one."""
        if batch.matrix is not None:
            if not self.has_names:
                return batch.matrix
            return pd.DataFrame(batch.matrix, columns=list(self.feature_names), copy=False)
        assert batch.columns is not None
        return pd.DataFrame(dict(zip(self.feature_names, batch.columns, strict=True)))

    def predict(self, batch: Batch, with_proba: bool = False) -> Prediction:
        if self._fast is not None and batch.matrix is not None:
            return self._fast_predict(batch.matrix, with_proba)
        return self.reference_predict(batch, with_proba)

    def reference_predict(self, batch: Batch, with_proba: bool = False) -> Prediction:
        """The pipeline exactly as trained: `pipeline.predict(DataFrame)`."""
        x = self.frame(batch)
        labels = self.estimator.predict(x)
        return Prediction(labels, self.estimator.predict_proba(x) if with_proba else None)

    def _fast_predict(self, matrix: Matrix, with_proba: bool) -> Prediction:
        assert self._fast is not None
        transform, final = self._fast
        xt = transform(matrix)
        return Prediction(final.predict(xt), final.predict_proba(xt) if with_proba else None)

    def _probe_fast_path(self) -> bool:
        """Both paths must give identical answers (or the same error) on probe rows, with and
        without missing values."""
        n = len(self.features)
        mean, scale = _probe_location(self.estimator, n)
        probe = mean + np.random.default_rng(0).normal(size=(64, n)) * scale
        with_missing = probe.copy()
        with_missing[np.arange(64) % 4 == 0, np.arange(16) % n] = np.nan
        return all(self._same_outcome(Batch(rows=64, matrix=m)) for m in (probe, with_missing))

    def _same_outcome(self, batch: Batch) -> bool:
        assert batch.matrix is not None
        # A refusal (e.g. NaN without an imputer) counts as an outcome: both paths must refuse alike.
        expected: Prediction | type[BaseException]
        got: Prediction | type[BaseException]
        try:
            expected = self.reference_predict(batch, self.has_proba)
        except Exception as exc:
            expected = type(exc)
        try:
            got = self._fast_predict(batch.matrix, self.has_proba)
        except Exception as exc:
            got = type(exc)
        if isinstance(expected, Prediction) and isinstance(got, Prediction):
            both_proba = expected.proba is not None and got.proba is not None
            if (expected.proba is None) != (got.proba is None):
                return False
            return _same(got.labels, expected.labels) and (not both_proba or _same(got.proba, expected.proba))
        return expected == got


def _same(got: Any, expected: Any) -> bool:
    """Class labels exactly; floats up to summation order (BLAS sums in a different order when the
    same values sit in a C- instead of an F-ordered array: differences of ~1e-16)."""
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape or got.dtype.kind != expected.dtype.kind:
        return False
    if expected.dtype.kind == "f":
        return bool(np.allclose(got, expected, rtol=1e-12, atol=1e-15, equal_nan=True))
    return bool(np.array_equal(got, expected))


def _probe_location(estimator: Any, n: int) -> tuple[Matrix, Matrix]:
    """Centre and spread of the probe rows: the training data's, where a scaler remembers them."""
    for step in _walk(estimator):
        scale, mean = getattr(step, "scale_", None), getattr(step, "mean_", None)
        if scale is not None and mean is not None and np.shape(scale) == (n,) and np.shape(mean) == (n,):
            return np.asarray(mean, dtype=np.float64), np.asarray(scale, dtype=np.float64)
    return np.zeros(n), np.ones(n)


def _walk(estimator: Any) -> list[Any]:
    out = [estimator]
    if isinstance(estimator, Pipeline):
        for _, step in estimator.steps:
            out += _walk(step)
    elif isinstance(estimator, ColumnTransformer):
        for _, trans, _ in getattr(estimator, "transformers_", []):
            if not isinstance(trans, str):
                out += _walk(trans)
    return out


def _infer_features(estimator: Any) -> tuple[Feature, ...]:
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        n = getattr(estimator, "n_features_in_", None)
        if n is None:
            raise ValueError("the model does not record its input features (no n_features_in_)")
        return tuple(Feature(f"x{i}", categorical=False) for i in range(int(n)))
    names = [str(n) for n in names]
    categorical = _categorical_columns(estimator, names)
    return tuple(Feature(n, n in categorical) for n in names)


def _categorical_columns(estimator: Any, names: Sequence[str]) -> set[str]:
    """Columns an encoder with string categories consumes: they take strings, the rest numbers."""
    found: set[str] = set()
    steps = estimator.steps if isinstance(estimator, Pipeline) else [("model", estimator)]
    for _, step in steps:
        if not isinstance(step, ColumnTransformer):
            continue
        for _, trans, cols in step.transformers_:
            if isinstance(trans, str):
                continue
            selected = _column_names(cols, names)
            for enc in _walk(trans):
                if type(enc).__name__ in _ENCODER_NAMES and hasattr(enc, "categories_"):
                    for col, cats in zip(selected, enc.categories_, strict=False):
                        if np.asarray(cats).dtype.kind in "OUS":
                            found.add(col)
    return found


def _column_names(cols: Any, names: Sequence[str]) -> list[str]:
    if isinstance(cols, str | int | np.integer):
        cols = [cols]
    out = []
    for c in list(cols):
        out.append(names[int(c)] if isinstance(c, int | np.integer) else str(c))
    return out


def _without_feature_names(estimator: Any) -> Any:
    """A copy whose steps do not check input column names (they will get an ndarray)."""
    clone = copy.deepcopy(estimator)
    for step in _walk(clone):
        if "feature_names_in_" in vars(step):  # Pipeline exposes it as a read-only property
            del step.feature_names_in_
    return clone


def _compile_fast_path(estimator: Any) -> tuple[Callable[[Matrix], Any], Any] | None:
    """(transform, final estimator) running the fitted steps on an ndarray, or None if unsupported.

    The final estimator is a kernel (kernels.py) where one reproduces its predict exactly."""
    if not hasattr(estimator, "n_features_in_"):
        return None
    model = _without_feature_names(estimator)
    names = [str(n) for n in getattr(estimator, "feature_names_in_", [])]
    if not isinstance(model, Pipeline):
        return (lambda x: x), fast_final(model)
    stages: list[Callable[[Any], Any]] = []
    for _, step in model.steps[:-1]:
        if step is None or step == "passthrough":
            continue
        if isinstance(step, ColumnTransformer):
            stage = _column_transformer_stage(step, names)
            if stage is None:
                return None
            stages.append(stage)
        elif hasattr(step, "transform"):
            stages.append(_transformer_stage(step))
        else:
            return None
        names = []  # after the first stage, columns are positional
    final = fast_final(model.steps[-1][1])

    def transform(x: Matrix) -> Any:
        for stage in stages:
            x = stage(x)
        return x

    return transform, final


def _column_transformer_stage(ct: ColumnTransformer, names: Sequence[str]) -> Callable[[Any], Any] | None:
    if getattr(ct, "sparse_output_", False):
        return None
    index = {n: i for i, n in enumerate(names)}
    branches: list[tuple[Any, NDArray[np.intp]]] = []  # (fitted transformer or "passthrough", columns)
    for _, trans, cols in ct.transformers_:
        try:
            selected = _column_names(cols, list(names)) if names else [str(c) for c in cols]
            idx = np.array([index[c] if names else int(c) for c in selected], dtype=np.intp)
        except (KeyError, TypeError, ValueError):
            return None
        if trans == "drop" or len(idx) == 0:
            continue
        branches.append((trans, idx))

    compiled = [(None if isinstance(t, str) else _transformer_stage(t), idx) for t, idx in branches]

    def stage(x: Matrix) -> Matrix:
        parts = [x[:, idx] if f is None else f(x[:, idx]) for f, idx in compiled]
        return np.hstack(parts) if len(parts) > 1 else np.asarray(parts[0])

    return stage


def _transformer_stage(step: Any) -> Callable[[Any], Any]:
    """The step's transform; for the common numeric preprocessing steps, the same arithmetic in numpy.

    sklearn's per-call validation costs ~0.1 ms per step, more than the model itself for one row.
    The replacements do exactly what the fitted step's transform does on dense float64 input, on a
    new array (the input is kept for collection), and the load-time probe checks that they agree.
    """
    if isinstance(step, Pipeline):
        inner = [_transformer_stage(s) for _, s in step.steps if s is not None and s != "passthrough"]

        def chain(x: Any) -> Any:
            for f in inner:
                x = f(x)
            return x

        return chain
    name = type(step).__name__
    if name == "StandardScaler":
        mean = step.mean_ if step.with_mean else None
        scale = step.scale_ if step.with_std else None

        def standardize(x: Matrix) -> Matrix:
            x = x - mean if mean is not None else x.copy()
            return x / scale if scale is not None else x

        return standardize
    if (
        name == "SimpleImputer"
        and not step.add_indicator
        and _is_nan(step.missing_values)
        and np.asarray(step.statistics_).dtype.kind == "f"
        and not np.isnan(step.statistics_).any()
    ):
        statistics = np.asarray(step.statistics_, dtype=np.float64)

        def impute(x: Matrix) -> Matrix:
            missing = np.isnan(x)
            if not missing.any():
                return x.copy()
            return np.where(missing, statistics, x)

        return impute
    transform: Callable[[Any], Any] = step.transform
    return transform


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value
