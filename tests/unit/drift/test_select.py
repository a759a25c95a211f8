"""Test selection (Evidently's auto rules), overrides, Bonferroni and the dataset verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from mlops_operator.api.profile import OTHER_CATEGORY
from mlops_operator.api.v1alpha1.driftmonitor import DriftTest, FeatureOverride
from mlops_operator.drift import select, stats
from mlops_operator.drift.reference import prepare_categorical
from mlops_operator.drift.select import CurrentCategorical, CurrentNumeric, DriftCheckSettings
from tests.unit.drift.profiles import in_memory_reference

CATEGORICAL = {"colour", "flag"}


def _frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1, rows),
            "y": rng.exponential(1 + shift, rows),
            "grade": rng.integers(1, 4, rows).astype(float),  # numeric with 3 values
            "colour": rng.choice(["red", "green", "blue"], rows, p=[0.5, 0.3, 0.2]),
            "flag": rng.choice(["yes", "no"], rows),
        }
    )


def _current(frame: pd.DataFrame) -> dict[str, select.CurrentFeature]:
    current: dict[str, select.CurrentFeature] = {}
    for name in frame.columns:
        if name in CATEGORICAL:
            current[name] = CurrentCategorical(
                {str(k): int(v) for k, v in frame[name].astype(str).value_counts().items()}
            )
        else:
            current[name] = CurrentNumeric(stats.finite_sorted(frame[name].to_numpy()))
    return current


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (1000, {"x": "ks", "y": "ks", "grade": "chisquare", "colour": "chisquare", "flag": "ztest"}),
        (
            1001,
            {
                "x": "wasserstein",
                "y": "wasserstein",
                "grade": "jensenshannon",
                "colour": "jensenshannon",
                "flag": "jensenshannon",
            },
        ),
    ],
)
def test_auto_selection_follows_evidently(rows: int, expected: dict[str, str]) -> None:
    reference = in_memory_reference(_frame(rows, 0), CATEGORICAL)
    evaluation = select.evaluate(reference, _current(_frame(300, 1)), DriftCheckSettings())
    assert {f.name: f.test for f in evaluation.features} == expected
    thresholds = {f.name: f.threshold for f in evaluation.features}
    assert thresholds["x"] == (0.05 if rows <= 1000 else 0.1)


def test_scores_equal_scipy_and_verdicts_follow_the_thresholds() -> None:
    reference_frame, current_frame = _frame(800, 2), _frame(600, 3, shift=0.4)
    reference = in_memory_reference(reference_frame, CATEGORICAL)
    evaluation = select.evaluate(reference, _current(current_frame), DriftCheckSettings())
    by_name = {f.name: f for f in evaluation.features}
    for name in ("x", "y"):
        expected = scipy_stats.ks_2samp(reference_frame[name], current_frame[name]).pvalue
        assert by_name[name].outcome.value == pytest.approx(expected, rel=1e-9)
        assert by_name[name].drifted == (expected <= 0.05)
    table = pd.crosstab(
        np.r_[np.zeros(800), np.ones(600)], pd.concat([reference_frame["colour"], current_frame["colour"]])
    )
    expected_chi = scipy_stats.chi2_contingency(table.to_numpy(), correction=False).pvalue
    assert by_name["colour"].outcome.value == pytest.approx(expected_chi, rel=1e-9)
    assert evaluation.drifted == [f.name for f in evaluation.features if f.drifted]
    assert evaluation.dataset_drift == (len(evaluation.drifted) / 5 >= 0.5)


def test_plan_level_tests_overrides_ignore_and_threshold() -> None:
    reference = in_memory_reference(_frame(500, 4), CATEGORICAL)
    settings = DriftCheckSettings(
        numeric_test=DriftTest.PSI,
        categorical_test=DriftTest.JENSEN_SHANNON,
        threshold=0.2,
        overrides={
            "x": FeatureOverride(name="x", test=DriftTest.WASSERSTEIN, threshold=0.05),
            "flag": FeatureOverride(name="flag", ignore=True),
        },
    )
    evaluation = select.evaluate(reference, _current(_frame(400, 5)), settings)
    chosen = {f.name: (f.test, f.threshold) for f in evaluation.features}
    assert chosen == {
        "x": ("wasserstein", 0.05),
        "y": ("psi", 0.2),
        "grade": ("psi", 0.2),
        "colour": ("jensenshannon", 0.2),
    }
    assert evaluation.ignored == ["flag"]


def test_bonferroni_divides_only_p_value_thresholds_by_the_features_tested() -> None:
    reference = in_memory_reference(_frame(500, 6), CATEGORICAL)
    settings = DriftCheckSettings(bonferroni=True, overrides={"y": FeatureOverride(name="y", test=DriftTest.PSI)})
    evaluation = select.evaluate(reference, _current(_frame(400, 7)), settings)
    thresholds = {f.name: f.threshold for f in evaluation.features}
    assert thresholds == {"x": 0.01, "y": 0.1, "grade": 0.01, "colour": 0.01, "flag": 0.01}


def test_bonferroni_can_turn_a_marginal_drift_into_no_drift() -> None:
    p = 0.03
    assert select.is_drifted(DriftTest.CHI_SQUARE, stats.StatisticResult(value=p), 0.05)
    assert not select.is_drifted(DriftTest.CHI_SQUARE, stats.StatisticResult(value=p), 0.05 / 5)


def test_ks_uses_p_at_most_threshold_and_distances_at_least_threshold() -> None:
    assert select.is_drifted(DriftTest.KS, stats.StatisticResult(value=0.05), 0.05)
    assert not select.is_drifted(DriftTest.CHI_SQUARE, stats.StatisticResult(value=0.05), 0.05)
    assert select.is_drifted(DriftTest.WASSERSTEIN, stats.StatisticResult(value=0.1), 0.1)
    assert not select.is_drifted(DriftTest.KS, stats.not_computable("empty"), 0.05)


def test_a_numeric_only_test_on_a_categorical_feature_is_a_selection_error() -> None:
    reference = in_memory_reference(_frame(100, 8), CATEGORICAL)
    settings = DriftCheckSettings(overrides={"colour": FeatureOverride(name="colour", test=DriftTest.KS)})
    with pytest.raises(select.SelectionError, match="colour"):
        select.evaluate(reference, _current(_frame(100, 9)), settings)


def test_z_test_on_more_than_two_values_is_not_computable() -> None:
    reference = in_memory_reference(_frame(100, 10), CATEGORICAL)
    settings = DriftCheckSettings(overrides={"colour": FeatureOverride(name="colour", test=DriftTest.Z_TEST)})
    evaluation = select.evaluate(reference, _current(_frame(100, 11)), settings)
    colour = next(f for f in evaluation.features if f.name == "colour")
    assert not colour.outcome.computable and not colour.drifted and "2 distinct" in (colour.outcome.note or "")


def test_unseen_categories_count_as_new_cells_or_fold_into_other() -> None:
    plain = prepare_categorical("c", {"a": 10, "b": 5})
    labels, ref, cur = select.aligned_category_counts(plain, {"a": 3, "z": 4})
    assert (labels, ref.tolist(), cur.tolist()) == (["a", "b", "z"], [10, 5, 0], [3, 0, 4])
    # Folded: a folded category has a reference count <= 10 (the smallest kept), so any category
    # totalling <= 10 + 4 (the largest unknown current count) could be one: b goes to __other__ too.
    folded = prepare_categorical("c", {"a": 100, "b": 10, OTHER_CATEGORY: 2})
    labels, ref, cur = select.aligned_category_counts(folded, {"a": 30, "b": 2, "z": 4, "w": 1})
    assert (labels, ref.tolist(), cur.tolist()) == (["a", OTHER_CATEGORY], [100, 12], [30, 7])


def test_features_without_values_are_not_counted_in_the_share() -> None:
    reference = in_memory_reference(_frame(300, 12), CATEGORICAL)
    current = _current(_frame(300, 13, shift=3.0))
    current["y"] = CurrentNumeric(np.empty(0), missing=300)
    evaluation = select.evaluate(reference, current, DriftCheckSettings(missing_increase=None))
    y = next(f for f in evaluation.features if f.name == "y")
    assert not y.outcome.computable and not y.drifted
    assert len(evaluation.computable) == 4
    assert evaluation.drifted_share == len(evaluation.drifted) / 4


def test_no_computable_feature_means_no_verdict() -> None:
    reference = in_memory_reference(_frame(50, 14)[["x"]], set())
    evaluation = select.evaluate(reference, {"x": CurrentNumeric(np.empty(0))}, DriftCheckSettings())
    assert evaluation.drifted_share is None and evaluation.dataset_drift is None
