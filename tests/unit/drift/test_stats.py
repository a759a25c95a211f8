"""Every statistic against scipy, on random and tie-heavy samples, plus the inputs that cannot score."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats
from scipy.spatial import distance as scipy_distance

from mlops_operator.drift import stats

RTOL = 1e-9


def _pairs(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Continuous, shifted, rounded (many ties across sides), integer-valued, tiny and unequal sizes."""
    rng = np.random.default_rng(seed)
    pairs = []
    for n1, n2 in [(1, 1), (1, 7), (3, 2), (50, 50), (137, 211), (400, 90), (999, 1000)]:
        pairs.append((rng.normal(size=n1), rng.normal(0.3, 1.2, size=n2)))
        pairs.append((np.round(rng.normal(size=n1), 1), np.round(rng.normal(0.1, size=n2), 1)))
        pairs.append((rng.integers(0, 4, n1).astype(float), rng.integers(0, 5, n2).astype(float)))
    return pairs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_matches_ks_2samp_exact_mode(seed: int) -> None:
    for reference, current in _pairs(seed):
        expected = scipy_stats.ks_2samp(reference, current)
        got = stats.ks(np.sort(reference), np.sort(current))
        assert got.statistic == expected.statistic
        assert got.value == pytest.approx(expected.pvalue, rel=RTOL, abs=0)


@pytest.mark.parametrize(("n1", "n2"), [(10_000, 10_000), (10_001, 4_000), (30_000, 25_000)])
def test_ks_matches_ks_2samp_at_the_exact_asymptotic_switch(n1: int, n2: int) -> None:
    rng = np.random.default_rng(n1 + n2)
    reference, current = rng.normal(size=n1), rng.normal(0.02, 1, size=n2)
    expected = scipy_stats.ks_2samp(reference, current)
    got = stats.ks(np.sort(reference), np.sort(current))
    assert got.statistic == pytest.approx(expected.statistic, rel=1e-15)
    assert got.value == pytest.approx(expected.pvalue, rel=RTOL)


@pytest.mark.parametrize("block", [1, 2, 3, 8])
def test_ks_block_pruning_matches_ks_2samp_statistic(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small blocks force the pruned path (bounds per block, full counts only in candidate blocks)
    and the full-merge fallback (near-identical samples) on a few thousand values."""
    monkeypatch.setattr(stats, "KS_BLOCK", block)
    rng = np.random.default_rng(block)
    base = rng.normal(size=3000)
    cases = [
        (rng.normal(size=2000), rng.normal(0.2, 1.1, size=3000)),
        (np.round(rng.normal(size=2500), 1), np.round(rng.normal(0.05, size=1700), 1)),
        (base, base + rng.normal(0, 1e-9, size=base.size)),
        (rng.integers(0, 3, 4000).astype(float), rng.integers(0, 3, 900).astype(float)),
    ]
    for reference, current in cases:
        expected = scipy_stats.ks_2samp(reference, current)
        got = stats.ks(np.sort(reference), np.sort(current))
        assert got.statistic == expected.statistic


def test_ks_identical_and_disjoint_samples() -> None:
    same = np.sort(np.random.default_rng(3).normal(size=200))
    assert stats.ks(same, same).value == pytest.approx(1.0)
    far = stats.ks(same, same + 100)
    assert far.statistic == 1.0
    assert far.value == pytest.approx(scipy_stats.ks_2samp(same, same + 100).pvalue, rel=RTOL)


def test_right_ranks_is_searchsorted_right() -> None:
    rng = np.random.default_rng(4)
    reference = np.sort(np.round(rng.normal(size=5000), 2))
    current = np.sort(np.round(rng.normal(size=3000), 2))
    assert np.array_equal(stats.right_ranks(reference, current), np.searchsorted(reference, current, "right"))


@pytest.mark.parametrize("seed", [0, 1])
def test_wasserstein_matches_scipy(seed: int) -> None:
    for reference, current in _pairs(seed):
        expected = scipy_stats.wasserstein_distance(reference, current)
        got = stats.wasserstein_sorted(np.sort(reference), np.sort(current))
        assert got == pytest.approx(expected, rel=RTOL, abs=1e-15)


def test_normed_wasserstein_divides_by_reference_std_with_evidently_floor() -> None:
    rng = np.random.default_rng(5)
    reference, current = np.sort(rng.normal(0, 2, 800)), np.sort(rng.normal(0.5, 2, 700))
    outcome = stats.normed_wasserstein(reference, current, float(np.std(reference)))
    expected = scipy_stats.wasserstein_distance(reference, current) / np.std(reference)
    assert outcome.value == pytest.approx(expected, rel=RTOL)
    constant = np.full(10, 3.0)
    shifted = stats.normed_wasserstein(constant, constant + 1, 0.0)
    assert shifted.value == pytest.approx(1.0 / stats.WASSERSTEIN_MIN_STD)


def test_chi_square_is_chi2_contingency_without_correction_with_unseen_categories() -> None:
    reference = np.array([120, 80, 40, 0, 10])  # category 3 unseen in the reference
    current = np.array([100, 95, 30, 12, 0])  # category 4 unseen in the window
    outcome = stats.chi_square(reference, current)
    chi2, p, dof, _ = scipy_stats.chi2_contingency(np.vstack([reference, current]), correction=False)
    assert outcome.statistic == pytest.approx(chi2, rel=RTOL) and dof == 4
    assert outcome.value == pytest.approx(p, rel=RTOL)


def test_chi_square_drops_categories_empty_on_both_sides_and_handles_a_single_category() -> None:
    with_empty = stats.chi_square(np.array([5, 0, 7]), np.array([6, 0, 2]))
    expected = scipy_stats.chi2_contingency(np.array([[5, 7], [6, 2]]), correction=False)
    assert with_empty.value == pytest.approx(expected.pvalue, rel=RTOL)
    single = stats.chi_square(np.array([9, 0]), np.array([4, 0]))
    assert (single.value, single.statistic) == (1.0, 0.0)


def test_chi_square_is_a_test_of_independence_not_goodness_of_fit() -> None:
    """Goodness of fit treats small-reference proportions as exact and flags an undrifted sample."""
    reference, current = np.array([12, 8]), np.array([480, 520])
    independence = stats.chi_square(reference, current)
    goodness_of_fit = scipy_stats.chisquare(current, reference / reference.sum() * current.sum())
    assert independence.value is not None
    assert goodness_of_fit.pvalue < 0.05 < independence.value


def test_z_test_squared_is_the_uncorrected_2x2_chi_squared() -> None:
    outcome = stats.z_test(30, 100, 55, 120)
    chi2, p, _, _ = scipy_stats.chi2_contingency(np.array([[30, 70], [55, 65]]), correction=False)
    assert outcome.statistic is not None
    assert outcome.statistic**2 == pytest.approx(chi2, rel=RTOL)
    assert outcome.value == pytest.approx(p, rel=RTOL)
    assert stats.z_test(0, 10, 0, 5).value == 1.0  # one value on both sides


def test_jensen_shannon_is_scipy_on_frequencies_with_empty_cells_filled() -> None:
    reference, current = np.array([50, 30, 20, 0]), np.array([20, 30, 40, 10])
    outcome = stats.jensen_shannon_from_counts(reference, current)
    p = np.array([0.5, 0.3, 0.2, stats.EMPTY_BIN_FRACTION])
    assert outcome.value == pytest.approx(scipy_distance.jensenshannon(p, current / 100), rel=RTOL)


def test_psi_on_reference_deciles() -> None:
    rng = np.random.default_rng(6)
    reference = np.sort(rng.normal(size=5000))
    edges = stats.decile_edges(reference)
    ref_counts = stats.binned_counts(reference, edges)
    assert ref_counts.tolist() == [500] * 10
    current = np.sort(rng.normal(0.5, size=4000))
    cur_counts = stats.binned_counts(current, edges)
    assert np.array_equal(cur_counts, np.histogram(current, np.concatenate(([-np.inf], edges, [np.inf])))[0])
    ref_f, cur_f = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
    expected = float(np.sum((cur_f - ref_f) * np.log(cur_f / ref_f)))
    assert stats.psi_from_counts(ref_counts, cur_counts).value == pytest.approx(expected, rel=RTOL)


def test_reference_quantile_psi_sees_a_lognormal_drift_that_equal_width_bins_miss() -> None:
    rng = np.random.default_rng(7)
    reference = np.sort(rng.lognormal(0, 1, 50_000))
    current = np.sort(rng.lognormal(0.4, 1, 50_000))
    edges = stats.decile_edges(reference)
    quantile_psi = stats.psi_from_counts(stats.binned_counts(reference, edges), stats.binned_counts(current, edges))
    equal_edges = np.linspace(min(reference[0], current[0]), max(reference[-1], current[-1]), 11)[1:-1]
    equal_psi = stats.psi_from_counts(
        stats.binned_counts(reference, equal_edges), stats.binned_counts(current, equal_edges)
    )
    assert quantile_psi.value is not None and equal_psi.value is not None
    assert equal_psi.value < 0.1 <= quantile_psi.value


def test_psi_of_a_constant_reference_is_computable() -> None:
    constant = np.full(100, 2.0)
    edges = stats.decile_edges(constant)
    assert edges.tolist() == [2.0]
    reference_counts = stats.binned_counts(constant, edges)
    same = stats.psi_from_counts(reference_counts, stats.binned_counts(constant, edges))
    moved = stats.psi_from_counts(reference_counts, stats.binned_counts(constant + 1, edges))
    assert same.value == pytest.approx(0.0, abs=1e-12)
    assert moved.value is not None and moved.value > 1


@pytest.mark.parametrize(
    "outcome",
    [
        stats.ks(np.sort(np.arange(5.0)), np.empty(0)),
        stats.ks(np.empty(0), np.arange(3.0)),
        stats.normed_wasserstein(np.arange(5.0), np.empty(0), 1.0),
        stats.chi_square(np.array([3, 4]), np.array([0, 0])),
        stats.psi_from_counts(np.array([0, 0]), np.array([1, 2])),
        stats.jensen_shannon_from_counts(np.array([1, 2]), np.array([0, 0])),
        stats.z_test(1, 4, 0, 0),
    ],
)
def test_empty_sides_are_not_computable(outcome: stats.StatisticResult) -> None:
    assert not outcome.computable
    assert outcome.value is None and outcome.note


def test_all_nan_current_becomes_an_empty_side() -> None:
    current = stats.finite_sorted(np.full(20, np.nan))
    assert current.size == 0
    assert not stats.ks(np.arange(4.0), current).computable


def test_constant_columns_score_without_nan() -> None:
    constant = np.full(50, 1.5)
    same, moved = stats.ks(constant, constant), stats.ks(constant, constant + 1)
    assert (same.statistic, same.value) == (0.0, 1.0)
    assert moved.statistic == 1.0 and moved.value is not None and moved.value < 1e-10
    assert moved.value == pytest.approx(scipy_stats.ks_2samp(constant, constant + 1).pvalue, rel=RTOL)


@pytest.mark.parametrize(("n", "d"), [(200, 0.15), (5_000, 0.03), (50_000, 0.007), (50_000, 0.02), (150_000, 0.005)])
def test_kstwo_sf_matches_scipy_where_it_takes_the_fast_path(n: int, d: float) -> None:
    assert stats.kstwo_sf(d, n) == pytest.approx(scipy_stats.kstwo.sf(d, n), rel=RTOL)


def test_tiny_asymptotic_p_values_keep_the_verdict() -> None:
    n, d = 100_000, 0.03  # n*d^2 = 90: p around 1e-78
    fast = stats.kstwo_sf(d, n)
    assert 0 < fast < stats.KS_TINY_P
    assert scipy_stats.kstwo.sf(d, n) < stats.KS_TINY_P


# --- non-finite values (issue 11, item 7) -----------------------------------------------------------


def test_infinite_values_are_dropped_alike_and_equal_distributions_do_not_drift() -> None:
    """±inf used to stay on the current side only: 100 of 900 values at +inf made KS flag equal samples."""
    rng = np.random.default_rng(11)
    reference = stats.finite_sorted(np.append(rng.normal(size=800), [np.inf, -np.inf] * 5))
    raw_current = np.append(rng.normal(size=800), [np.inf] * 90 + [-np.inf] * 10)
    current = stats.finite_sorted(raw_current)
    assert reference.size == current.size == 800 and np.isfinite(current).all()
    outcome = stats.ks(reference, current)
    expected = scipy_stats.ks_2samp(reference, raw_current[np.isfinite(raw_current)])
    assert outcome.value == pytest.approx(expected.pvalue, rel=RTOL)
    assert outcome.value > 0.05


def test_one_infinite_value_does_not_turn_a_wasserstein_shift_into_nan() -> None:
    rng = np.random.default_rng(12)
    reference = np.sort(rng.normal(0, 1, 2000))
    raw_current = np.append(rng.normal(0.5, 1, 2000), np.inf)
    outcome = stats.normed_wasserstein(reference, stats.finite_sorted(raw_current), float(np.std(reference)))
    expected = scipy_stats.wasserstein_distance(reference, raw_current[:-1]) / np.std(reference)
    assert outcome.value is not None and np.isfinite(outcome.value)
    assert outcome.value == pytest.approx(expected, rel=RTOL) and outcome.value >= 0.1


# --- the scipy seam (issue 10, item 6) --------------------------------------------------------------


def test_stats_uses_only_public_scipy() -> None:
    """The exact KS p-value came from scipy.stats._stats_py._attempt_exact_2kssamp; a scipy release that
    changed it would have broken the check silently. Now the exact-size path is ks_2samp itself."""
    imported = []
    for node in ast.walk(ast.parse(Path(stats.__file__).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
    scipy_names = [name for name in imported if name.startswith("scipy")]
    assert scipy_names and not [name for name in scipy_names if any(p.startswith("_") for p in name.split("."))]


@pytest.mark.parametrize(("n1", "n2"), [(10_000, 37), (37, 10_000), (10_000, 10_000)])
def test_ks_at_the_largest_exact_sizes_is_ks_2samp(n1: int, n2: int) -> None:
    rng = np.random.default_rng(n1 * 3 + n2)
    reference, current = np.sort(rng.normal(size=n1)), np.sort(rng.normal(0.1, 1, size=n2))
    expected = scipy_stats.ks_2samp(reference, current, method="exact")
    got = stats.ks(reference, current)
    assert (got.statistic, got.value) == (expected.statistic, expected.pvalue)
