"""Prediction kernels (serve/kernels.py) answer bit for bit what the estimator's own predict answers,
and hand every input they do not take as is back to the estimator (its refusals, its messages)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, RidgeClassifier, SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import LinearSVC

from mlops_operator.workloads.serve import kernels

RNG = np.random.default_rng(7)


def _classification(classes: int, nan: bool = False) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(600, 12, n_informative=6, n_classes=classes, random_state=classes)
    if nan:
        X[RNG.random(X.shape) < 0.05] = np.nan
    return X, np.array(["ant", "bee", "cat", "dog"])[y]  # string labels: take() must keep them


def _probe(X: np.ndarray) -> list[np.ndarray]:
    """Rows from the training data, fresh rows, one row, and exact ties (many identical rows)."""
    fresh = RNG.normal(size=(300, X.shape[1])) * np.nanstd(X, axis=0)
    return [np.nan_to_num(X[:200]), fresh, fresh[:1].copy(), np.zeros((5, X.shape[1]))]


CLASSIFIERS = [
    (LogisticRegression(max_iter=2000), 2),
    (LogisticRegression(max_iter=2000), 4),
    (SGDClassifier(random_state=0), 3),
    (LinearSVC(), 2),
    (RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0), 2),
    (RandomForestClassifier(n_estimators=30, random_state=0), 4),
    (ExtraTreesClassifier(n_estimators=20, random_state=0), 3),
]


@pytest.mark.parametrize(("estimator", "classes"), CLASSIFIERS, ids=lambda p: type(p).__name__)
def test_classifier_kernels_are_bit_identical(estimator: Any, classes: int) -> None:
    X, y = _classification(classes)
    fitted = estimator.fit(X, y)
    kernel = kernels.fast_final(fitted)
    assert kernel is not fitted, "a kernel applies to this class"
    for x in _probe(X):
        assert np.array_equal(kernel.predict(x), fitted.predict(x))
        if hasattr(fitted, "predict_proba"):
            assert np.array_equal(kernel.predict_proba(x), fitted.predict_proba(x))


@pytest.mark.parametrize(
    "estimator",
    [LinearRegression(), Ridge(alpha=0.5), RandomForestRegressor(n_estimators=25, max_depth=8, random_state=0)],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize("targets", [1, 2])
def test_regressor_kernels_are_bit_identical(estimator: Any, targets: int) -> None:
    X, y = make_regression(500, 10, n_targets=targets, random_state=1)
    fitted = estimator.fit(X, y)
    kernel = kernels.fast_final(fitted)
    if targets == 2 and isinstance(fitted, RandomForestRegressor):
        assert kernel is fitted, "multi-output forests keep the estimator's own predict"
    for x in _probe(X):
        assert np.array_equal(kernel.predict(x), fitted.predict(x))


def test_forest_with_missing_values_and_float32_overflow_defer_to_the_estimator() -> None:
    X, y = _classification(2, nan=True)
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    kernel = kernels.fast_final(forest)
    with_nan = X[:50]
    assert np.isnan(with_nan).any()
    assert np.array_equal(kernel.predict(with_nan), forest.predict(with_nan))  # trees route NaN themselves
    huge = np.full((1, X.shape[1]), 1e300)  # finite in float64, inf in float32
    with pytest.raises(ValueError, match="infinity or a value too large") as kernel_error:
        kernel.predict(huge)
    with pytest.raises(ValueError) as own_error:
        forest.predict(huge)
    assert str(kernel_error.value) == str(own_error.value)


def test_linear_refusals_are_the_estimators_own() -> None:
    X, y = _classification(2)
    model = LogisticRegression(max_iter=2000).fit(X, y)
    kernel = kernels.fast_final(model)
    x = X[:3].copy()
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        kernel.predict(x)
    with pytest.raises(ValueError, match="features"):
        kernel.predict(X[:3, :5])
    as_list = X[:2].tolist()  # not an ndarray: the estimator converts it as it always does
    assert np.array_equal(kernel.predict(as_list), model.predict(as_list))


def test_unknown_and_overriding_classes_keep_their_own_predict() -> None:
    X, y = _classification(3)
    for estimator in (KNeighborsClassifier(), RidgeClassifier()):  # RidgeClassifier: label binarizer
        fitted = estimator.fit(X, y)
        assert kernels.fast_final(fitted) is fitted
    sparse_coef = LogisticRegression(max_iter=2000).fit(X, y).sparsify()
    assert kernels.fast_final(sparse_coef) is sparse_coef
