"""Prediction kernels: a fitted estimator's own arithmetic, without its per-call overhead.

Profiling the server under load (py-spy, issue 13) showed where a prediction's time goes:
- LogisticRegression, one row: ~90% of `predict` is scikit-learn's input validation (dataframe
  detection through narwhals, tags, finiteness), not the 20 multiplications;
- RandomForest(100 trees), one row: ~5.5 ms, of which ~0.3 ms is walking the trees; the rest is
  paid once per tree (validation, a joblib dispatch, a lock): 20x the traversal.

A kernel computes exactly what the estimator's `predict` (and, for forests, `predict_proba`)
computes, in the same order on the same dtypes, so the results are bit-identical: linear models
`x @ coef_.T + intercept_` then the same thresholding or argmax; forests each tree's `tree_.apply`
on the float32 input and its leaf values summed tree by tree, then divided by the number of trees.
Anything but a dense, finite float64 matrix of the fitted width goes to the estimator itself, so
its refusals (NaN without support, float32 overflow, a wrong width) and their messages stay
scikit-learn's. A kernel applies only to the exact estimator classes checked below; ServedModel's
load-time probe compares it with the pipeline and drops the fast path on any difference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Perceptron, Ridge, SGDClassifier
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

# Classes whose predict is the generic one reproduced here (LinearClassifierMixin, LinearModel,
# ForestClassifier, ForestRegressor) in scikit-learn 1.9; subclasses are not assumed to be.
_LINEAR_CLASSIFIERS = (LogisticRegression, SGDClassifier, Perceptron, LinearSVC)
_LINEAR_REGRESSORS = (LinearRegression, Ridge)
_FOREST_CLASSIFIERS = (RandomForestClassifier, ExtraTreesClassifier)
_FOREST_REGRESSORS = (RandomForestRegressor, ExtraTreesRegressor)
_TREES = (DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor)


def fast_final(estimator: Any) -> Any:
    """A kernel standing in for `estimator` (same predict/predict_proba), or the estimator itself."""
    kind = type(estimator)
    coef = getattr(estimator, "coef_", None)
    if kind in _LINEAR_CLASSIFIERS and isinstance(coef, np.ndarray) and coef.ndim == 2:
        return LinearClassifierKernel(estimator)
    if kind in _LINEAR_REGRESSORS and isinstance(coef, np.ndarray) and coef.ndim in (1, 2):
        return LinearRegressorKernel(estimator)
    if kind in (*_FOREST_CLASSIFIERS, *_FOREST_REGRESSORS) and _plain_forest(estimator):
        return ForestKernel(estimator)
    return estimator


def _plain_forest(forest: Any) -> bool:
    trees: list[Any] = getattr(forest, "estimators_", None) or []
    return (
        getattr(forest, "n_outputs_", None) == 1
        and bool(trees)
        and all(type(t) in _TREES and hasattr(t, "tree_") for t in trees)
    )


class _Kernel:
    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        self.n_features = int(estimator.n_features_in_)

    def _plain(self, x: Any) -> bool:
        """Input the kernel takes as is: what scikit-learn's validation would pass unchanged."""
        return (
            type(x) is np.ndarray
            and x.dtype == np.float64
            and x.ndim == 2
            and x.shape[1] == self.n_features
            and bool(np.isfinite(x).all())
        )

    def predict_proba(self, x: Any) -> Any:
        return self.estimator.predict_proba(x)


class LinearClassifierKernel(_Kernel):
    """LinearClassifierMixin.predict: scores > 0 (binary) or argmax of the scores, into classes_."""

    def __init__(self, estimator: Any) -> None:
        super().__init__(estimator)
        self.coef_t = estimator.coef_.T
        self.intercept = estimator.intercept_
        self.labels = estimator.classes_

    def predict(self, x: Any) -> Any:
        if not self._plain(x):
            return self.estimator.predict(x)
        scores = x @ self.coef_t + self.intercept
        binary = scores.shape[1] == 1
        indices = (scores.reshape(-1) > 0).astype(np.intp) if binary else scores.argmax(axis=1)
        return self.labels.take(indices, axis=0)


class LinearRegressorKernel(_Kernel):
    """LinearModel._decision_function: x @ coef_ (coef_.T for several targets) + intercept_."""

    def __init__(self, estimator: Any) -> None:
        super().__init__(estimator)
        coef = estimator.coef_
        self.coef = coef if coef.ndim == 1 else coef.T
        self.intercept = estimator.intercept_

    def predict(self, x: Any) -> Any:
        if not self._plain(x):
            return self.estimator.predict(x)
        return x @ self.coef + self.intercept


class ForestKernel(_Kernel):
    """ForestClassifier.predict_proba / ForestRegressor.predict with the trees walked in order.

    Per tree, scikit-learn adds `tree_.value` at the leaves `tree_.apply` finds for the float32
    input into a float64 sum (with n_jobs=1, in the order of estimators_; the one order kept here),
    then divides by the number of trees; a classifier's label is classes_ at the argmax."""

    def __init__(self, estimator: Any) -> None:
        super().__init__(estimator)
        self.classifier = hasattr(estimator, "classes_")
        width = int(estimator.n_classes_) if self.classifier else 1
        self.trees = [
            (t.tree_, np.ascontiguousarray(t.tree_.value.reshape(t.tree_.node_count, -1)[:, :width]))
            for t in estimator.estimators_
        ]
        self.width = width
        self.labels = estimator.classes_ if self.classifier else None

    def _sum(self, x: Any) -> NDArray[np.float64] | None:
        """Mean of the trees' leaf values, or None for input the estimator must judge itself."""
        if not self._plain(x):
            return None
        with np.errstate(over="ignore"):  # overflow becomes inf, refused just below
            x32 = x.astype(np.float32)
        if not np.isfinite(x32).all():  # past float32's range: scikit-learn refuses it
            return None
        total = np.zeros((x.shape[0], self.width), dtype=np.float64)
        for tree, values in self.trees:
            total += values.take(tree.apply(x32), axis=0)
        total /= len(self.trees)
        return total

    def predict_proba(self, x: Any) -> Any:
        proba = self._sum(x) if self.classifier else None
        return self.estimator.predict_proba(x) if proba is None else proba

    def predict(self, x: Any) -> Any:
        total = self._sum(x)
        if total is None:
            return self.estimator.predict(x)
        if self.labels is None:
            return total[:, 0]
        return self.labels.take(np.argmax(total, axis=1), axis=0)


__all__ = ["ForestKernel", "LinearClassifierKernel", "LinearRegressorKernel", "fast_final"]
