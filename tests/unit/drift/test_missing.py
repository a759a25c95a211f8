"""Missing and non-finite values: counted alike on both sides, reported per feature, alertable.

"Missing" is null, NaN, +inf or -inf on either side. A reference column with no finite value gives
"not computable" results (never an exception), and a rise of the missing share is drift.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_operator.api.v1alpha1.driftmonitor import DriftTest, FeatureOverride
from mlops_operator.drift import features, report, select, stats
from mlops_operator.drift.select import CurrentCategorical, CurrentNumeric, DriftCheckSettings
from tests.unit.drift.profiles import in_memory_reference

ROWS = 800


def _reference_frame(seed: int, missing_share: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=ROWS),
            "colour": rng.choice(["red", "green", "blue"], ROWS),
        }
    )
    holes = rng.random(ROWS) < missing_share
    frame.loc[holes, "x"] = np.nan
    frame.loc[rng.random(ROWS) < missing_share, "colour"] = None
    return frame


def _window(seed: int, rows: int, missing: int) -> dict[str, select.CurrentFeature]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    x[:missing] = np.nan
    colour = pd.Series(rng.choice(["red", "green", "blue"], rows - missing)).value_counts()
    return {
        "x": features.current_numeric(x),
        "colour": CurrentCategorical({str(k): int(v) for k, v in colour.items()}, missing=missing),
    }


@pytest.mark.parametrize("test", [DriftTest.AUTO, *select.DEFAULT_THRESHOLDS])
@pytest.mark.parametrize("empty", [np.nan, np.inf])
def test_a_reference_column_without_finite_values_is_not_computable(test: DriftTest, empty: float) -> None:
    """It used to raise IndexError while the reference was prepared (issue 11 item 7)."""
    frame = pd.DataFrame({"x": np.full(50, empty), "y": np.arange(50.0)})
    reference = in_memory_reference(frame, set())
    x = reference.features["x"]
    assert isinstance(x, features.NumericReference) and x.size == 0
    assert (x.missing, x.rows, x.missing_share) == (50, 50, 1.0)
    settings = DriftCheckSettings(overrides={"x": FeatureOverride(name="x", test=test)})
    current = {"x": CurrentNumeric(np.arange(10.0)), "y": CurrentNumeric(np.arange(10.0))}
    evaluation = select.evaluate(reference, current, settings)
    verdict = evaluation.features[0]
    assert verdict.name == "x" and not verdict.outcome.computable and not verdict.drifted
    assert verdict.outcome.note == stats.NO_REFERENCE_VALUES
    assert [f.name for f in evaluation.computable] == ["y"]
    page = report.render(report.Header("t", "NoDrift", 10, "w", "r"), evaluation, reference, current)
    assert 'data-feature="x"' in page


def test_infinite_reference_values_are_dropped_and_counted_as_missing() -> None:
    frame = pd.DataFrame({"x": np.r_[np.arange(95.0), [np.inf] * 3, [-np.inf], [np.nan]]})
    x = in_memory_reference(frame, set()).features["x"]
    assert isinstance(x, features.NumericReference)
    assert np.isfinite(x.sorted_values).all() and x.size == 95
    assert (x.missing, x.rows) == (5, 100)


def test_current_numeric_counts_nulls_nan_and_infinities_as_missing() -> None:
    current = features.current_numeric([3.0, np.nan, np.inf, 1.0, -np.inf, 2.0])
    assert current.sorted_values.tolist() == [1.0, 2.0, 3.0]
    assert (current.missing, current.non_finite, current.rows, current.missing_share) == (3, 2, 6, 0.5)


def test_missing_shares_and_sizes_are_reported_per_feature() -> None:
    reference = in_memory_reference(_reference_frame(1, missing_share=0.05), {"colour"})
    evaluation = select.evaluate(reference, _window(2, 400, missing=30), DriftCheckSettings())
    by_name = {f.name: f for f in evaluation.features}
    for name, frame_missing in (
        ("x", reference.features["x"].missing),
        ("colour", reference.features["colour"].missing),
    ):
        verdict = by_name[name]
        assert verdict.reference_missing_share == pytest.approx(frame_missing / ROWS)
        assert verdict.current_missing_share == pytest.approx(30 / 400)
        assert (verdict.reference_n, verdict.current_n) == (ROWS - frame_missing, 370)
        assert not verdict.missing_drifted  # +2.5 points: below the default 10


def test_a_rise_of_the_missing_share_is_drift_even_when_the_values_are_not() -> None:
    reference = in_memory_reference(_reference_frame(3, missing_share=0.02), {"colour"})
    current = _window(4, 400, missing=120)  # 30 % missing, values from the same distribution
    evaluation = select.evaluate(reference, current, DriftCheckSettings())
    assert all(f.missing_drifted and f.drifted for f in evaluation.features)
    assert all(f.outcome.value is not None and f.outcome.value > 0.05 for f in evaluation.features)
    assert evaluation.drifted == ["x", "colour"] and evaluation.dataset_drift
    off = select.evaluate(reference, current, DriftCheckSettings(missing_increase=None))
    assert off.drifted == [] and not any(f.missing_drifted for f in off.features)
    stricter = select.evaluate(reference, current, DriftCheckSettings(missing_increase=0.5))
    assert stricter.drifted == []


def test_a_small_window_does_not_alarm_on_missing_share_noise() -> None:
    reference = in_memory_reference(_reference_frame(5, missing_share=0.3), {"colour"})
    current = _window(6, 10, missing=5)  # +20 points, on 10 rows: not significant
    evaluation = select.evaluate(reference, current, DriftCheckSettings())
    assert not any(f.missing_drifted for f in evaluation.features)


def test_an_all_missing_window_feature_has_a_verdict_when_its_missing_share_drifted() -> None:
    reference = in_memory_reference(_reference_frame(7), {"colour"})
    current = _window(8, 300, missing=0)
    current["x"] = CurrentNumeric(np.empty(0), missing=300)
    evaluation = select.evaluate(reference, current, DriftCheckSettings())
    x = next(f for f in evaluation.features if f.name == "x")
    assert not x.outcome.computable and x.missing_drifted and x.drifted and x.has_verdict
    assert len(evaluation.computable) == 2 and evaluation.drifted_share == pytest.approx(0.5)
