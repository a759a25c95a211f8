"""The scikit-learn estimators a Model may name, and validation of their hyperparameters.

A Model names its estimator by dotted class path. The path is only ever looked up in the allowlist
below; the module imported is the allowlist's own constant, so no user string reaches importlib.
Hyperparameters are checked by name against the estimator's `get_params()` and by type and range
against scikit-learn's own parameter constraints, before any data is read.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Final

from sklearn.base import BaseEstimator

from mlops_operator.api.v1alpha1.model import ParamValue, Task
from mlops_operator.workloads.common import SpecError

CLASSIFIERS: Final[tuple[str, ...]] = (
    "sklearn.linear_model.LogisticRegression",
    "sklearn.linear_model.RidgeClassifier",
    "sklearn.linear_model.SGDClassifier",
    "sklearn.tree.DecisionTreeClassifier",
    "sklearn.ensemble.RandomForestClassifier",
    "sklearn.ensemble.ExtraTreesClassifier",
    "sklearn.ensemble.GradientBoostingClassifier",
    "sklearn.ensemble.HistGradientBoostingClassifier",
    "sklearn.neighbors.KNeighborsClassifier",
    "sklearn.naive_bayes.GaussianNB",
    "sklearn.svm.SVC",
    "sklearn.svm.LinearSVC",
    "sklearn.neural_network.MLPClassifier",
)

REGRESSORS: Final[tuple[str, ...]] = (
    "sklearn.linear_model.LinearRegression",
    "sklearn.linear_model.Ridge",
    "sklearn.linear_model.Lasso",
    "sklearn.linear_model.ElasticNet",
    "sklearn.linear_model.SGDRegressor",
    "sklearn.tree.DecisionTreeRegressor",
    "sklearn.ensemble.RandomForestRegressor",
    "sklearn.ensemble.ExtraTreesRegressor",
    "sklearn.ensemble.GradientBoostingRegressor",
    "sklearn.ensemble.HistGradientBoostingRegressor",
    "sklearn.neighbors.KNeighborsRegressor",
    "sklearn.svm.SVR",
    "sklearn.svm.LinearSVR",
    "sklearn.neural_network.MLPRegressor",
)

ALLOWED: Final[dict[str, Task]] = {
    **dict.fromkeys(CLASSIFIERS, Task.CLASSIFICATION),
    **dict.fromkeys(REGRESSORS, Task.REGRESSION),
}


def estimator_class(path: str, task: Task | str) -> type[BaseEstimator]:
    """The allowlisted class for `path`, or a SpecError that says why not."""
    allowed_task = ALLOWED.get(path)
    if allowed_task is None:
        if _names_a_sklearn_estimator(path):
            raise SpecError(
                "DisallowedEstimator",
                f"estimator {path} is not on the allowlist for training; allowed for {task}: "
                + ", ".join(_allowed_for(task)),
            )
        if path.startswith("sklearn."):
            raise SpecError(
                "UnknownEstimator",
                f"estimator {path} does not exist; allowed for {task}: " + ", ".join(_allowed_for(task)),
            )
        raise SpecError(
            "DisallowedEstimator",
            f"estimator {path} is not allowed: only allowlisted scikit-learn estimators can be trained",
        )
    if allowed_task != task:
        raise SpecError(
            "EstimatorTaskMismatch", f"estimator {path} is for {allowed_task}, but the task is {task}"
        )
    module_name, class_name = path.rsplit(".", 1)
    cls: type[BaseEstimator] = getattr(importlib.import_module(module_name), class_name)
    return cls


def build_estimator(
    path: str, task: Task | str, params: Mapping[str, ParamValue], seed: int
) -> BaseEstimator:
    """An unfitted estimator with validated hyperparameters; random_state defaults to the plan's seed."""
    cls = estimator_class(path, task)
    defaults = cls().get_params(deep=False)
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise SpecError(
            "InvalidHyperparameter",
            f"{cls.__name__} has no parameter {', '.join(unknown)}; valid: {', '.join(sorted(defaults))}",
        )
    chosen = dict(params)
    if "random_state" in defaults and chosen.get("random_state") is None:
        chosen["random_state"] = seed
    estimator = cls(**chosen)
    _check_constraints(estimator)
    return estimator


def _check_constraints(estimator: BaseEstimator) -> None:
    # scikit-learn declares each parameter's types and ranges and checks them on fit; checking now
    # turns a late ValueError into an early, named SpecError. InvalidParameterError is a ValueError.
    validate = getattr(estimator, "_validate_params", None)
    if validate is None:
        return
    try:
        validate()
    except (ValueError, TypeError) as exc:
        raise SpecError("InvalidHyperparameter", str(exc).splitlines()[0][:500]) from exc


def _names_a_sklearn_estimator(path: str) -> bool:
    if not path.startswith("sklearn."):
        return False
    from sklearn.utils import all_estimators  # imports sklearn's own modules only; error path only

    module_name, class_name = path.rsplit(".", 1)
    return any(
        name == class_name and (cls.__module__ + ".").startswith(module_name + ".")
        for name, cls in all_estimators()
    )


def _allowed_for(task: Task | str) -> list[str]:
    return [path for path, allowed_task in ALLOWED.items() if allowed_task == task]


__all__ = ["ALLOWED", "CLASSIFIERS", "REGRESSORS", "build_estimator", "estimator_class"]
