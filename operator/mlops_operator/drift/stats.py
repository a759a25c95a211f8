"""Two-sample drift statistics on a presorted reference: vectorised numpy, p-values from scipy.

Every function takes the reference side already prepared (a sorted, finite float64 sample, or category
counts) and the current side as it comes, and returns a `StatisticResult`. Inputs a statistic cannot be
computed on (an empty side, all values missing) give a `StatisticResult` with `value=None` and a `note`,
never an exception or a NaN. Non-finite values (NaN, +inf, -inf) are dropped from both sides alike
(`finite_sorted`): callers count them as missing.

No I/O here: no store, no files, no network (import-linter keeps it so).

Agreement with scipy (tests/unit/drift check each of these):
- `ks`: statistic and p-value of `scipy.stats.ks_2samp(ref, cur)` with the default method='auto'
  (exact distribution when both sides have at most 10,000 values, else the asymptotic one), on the
  finite values; on the exact-size path it *is* ks_2samp; p-values below 1e-14 in the asymptotic mode
  come from the limiting Kolmogorov distribution instead of the finite-n one (see kstwo_sf), so
  verdicts match for any threshold above that;
- `chi_square`: `scipy.stats.chi2_contingency(table, correction=False)` on the 2-by-k table of reference
  counts vs current counts over the union of categories (a category unseen on one side is a zero cell).
  This is a test of independence, so the reference counts carry sampling error too; treating reference
  proportions as exact (a goodness-of-fit test) flags undrifted features when the reference is small.
  No Yates correction, also for k=2, so the statistic is the same function of the table for every k;
- `z_test`: the two-proportion z-test with pooled variance; z² equals the uncorrected 2-by-2 chi-squared;
- `wasserstein`: `scipy.stats.wasserstein_distance(ref, cur) / std(ref)` (Evidently's normed
  Wasserstein; the std is floored at 0.001 as Evidently does, so a constant reference still scores);
- `psi`, `jensen_shannon`: on reference-decile bins (numeric) or categories, with empty cells set to
  1e-4 as Evidently does; `jensen_shannon` is `scipy.spatial.distance.jensenshannon` (natural log).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import special
from scipy import stats as scipy_stats
from scipy.spatial import distance as scipy_distance

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

KS_EXACT_MAX_N: Final = 10_000  # scipy's MAX_AUTO_N: method='auto' is exact up to this size per side
EMPTY_BIN_FRACTION: Final = 1e-4  # Evidently's "feel zeroes" value for empty bins
WASSERSTEIN_MIN_STD: Final = 0.001  # Evidently's floor for the reference std in normed Wasserstein
PSI_QUANTILES: Final = tuple(q / 10 for q in range(1, 10))  # interior reference deciles
# Below this asymptotic estimate a KS p-value is reported from the limiting Kolmogorov distribution:
# no threshold a monitor can sensibly use lies there, and the finite-n tail costs O(n) special functions.
KS_TINY_P: Final = 1e-14
# Current values per block in ks_statistic_sorted: counts are searched at block starts, then in full only
# in the blocks that can hold the maximum. Smaller blocks bound tighter but cost more start searches.
KS_BLOCK: Final = 64


@dataclass(frozen=True, slots=True)
class StatisticResult:
    """One two-sample statistic on one feature.

    `value` is what the threshold is compared with: the p-value of a test, or the distance.
    `statistic` is the test statistic behind a p-value (KS D, chi-squared, z), else the distance.
    """

    value: float | None
    statistic: float | None = None
    note: str | None = None

    @property
    def computable(self) -> bool:
        return self.value is not None


def not_computable(note: str) -> StatisticResult:
    return StatisticResult(value=None, statistic=None, note=note)


def finite_sorted(values: npt.ArrayLike) -> FloatArray:
    """A side as KS, PSI and Wasserstein need it: float64, NaN and ±inf dropped, sorted.

    The reference sample is finite too (reference.prepare_numeric drops what an old profile kept), so
    an infinite value never enters a statistic on one side only: it would be an outlier no CDF
    distance weighs properly (KS) or turn a distance into NaN (Wasserstein). Callers count the dropped
    values as missing (`len(values) - result.size`).
    """
    array = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(array)
    return np.sort(array if finite.all() else array[finite])


NO_REFERENCE_VALUES: Final = "the reference has no finite non-missing values"
NO_CURRENT_VALUES: Final = "the current window has no finite non-missing values"


def _empty_side(reference: FloatArray | IntArray, current: FloatArray | IntArray) -> StatisticResult | None:
    if reference.size == 0:
        return not_computable(NO_REFERENCE_VALUES)
    if current.size == 0:
        return not_computable(NO_CURRENT_VALUES)
    return None


# --- Kolmogorov-Smirnov ---------------------------------------------------------------------------


def right_ranks(reference: FloatArray, current: FloatArray) -> IntArray:
    """For each value of `current` (sorted), how many values of `reference` (sorted) are <= it.

    Equal to `np.searchsorted(reference, current, side="right")`, computed as a merge: a stable
    argsort of the two concatenated sorted runs is a single linear merge pass (timsort finds the runs),
    and it reads memory sequentially, where a binary search per value misses the cache on large inputs.
    Reference values come first in the concatenation, so a reference value equal to a current one sorts
    before it and is counted, as side="right" requires.
    """
    order = np.argsort(np.concatenate((reference, current)), kind="stable")
    current_positions = np.flatnonzero(order >= reference.size)
    return current_positions - np.arange(current.size, dtype=np.int64)


def _left_ranks(reference: FloatArray, current: FloatArray) -> IntArray:
    """`np.searchsorted(reference, current, side="left")` as a merge: right_ranks with current first."""
    order = np.argsort(np.concatenate((current, reference)), kind="stable")
    return np.flatnonzero(order < current.size) - np.arange(current.size, dtype=np.int64)


def _run_starts(values: FloatArray) -> IntArray:
    """`np.searchsorted(values, values, side="left")` for sorted values: where each run of equal ones starts."""
    index = np.arange(values.size, dtype=np.int64)
    starts = np.empty(values.size, dtype=bool)
    starts[:1] = True
    np.not_equal(values[1:], values[:-1], out=starts[1:])
    return index if starts.all() else np.maximum.accumulate(np.where(starts, index, 0))


def ks_statistic_sorted(reference: FloatArray, current: FloatArray) -> float:
    """sup |F_ref - F_cur| over the union of values, for two sorted NaN-free non-empty samples.

    The supremum of F_cur - F_ref is reached at a current value c_i; that of F_ref - F_cur just below
    one (F_ref only grows between two current values). With counts instead of fractions, both are
    maxima over i of a difference of two counts that never decrease with i:
        (F_cur - F_ref)(c_i)  * n1 * n2 = (i + 1) * n1 - count(ref <= c_i) * n2,
        (F_ref - F_cur)(c_i-) * n1 * n2 = count(ref < c_i) * n2 - count(cur < c_i) * n1,
    exact at ties. The maxima are found on these integers (the first index that reaches them) and the
    winner is evaluated as count/n1 - count/n2, the same floating-point expression ks_2samp evaluates.

    Merging the whole current sample into the reference would give every count, but costs more than
    sorting it. Instead the counts are looked up (binary search) at the first value of every block of
    KS_BLOCK current values; a block's values then have an upper bound (the larger count at its upper
    end, the smaller at its start), and only blocks whose bound reaches the best value seen at a block
    start are searched in full. Away from the maximum the difference is far below it, so that is a few
    blocks out of thousands; only two nearly identical samples need every block (the old cost).
    """
    n1, n2 = reference.size, current.size
    starts = np.arange(0, n2, KS_BLOCK, dtype=np.int64)
    block_ends = np.append(starts[1:], n2)  # one past each block's last index
    ref_at_or_below = np.searchsorted(reference, current[starts], side="right")

    # The counts at sorted indices i; for every index (two nearly identical samples) a merge is cheaper.
    def cur_then_ref(i: IntArray) -> tuple[IntArray, IntArray]:
        if i.size == n2:
            return i + 1, right_ranks(reference, current)
        return i + 1, np.searchsorted(reference, current[i], side="right")

    def ref_then_cur_below(i: IntArray) -> tuple[IntArray, IntArray]:
        if i.size == n2:
            return _left_ranks(reference, current), _run_starts(current)
        values = current[i]
        return np.searchsorted(reference, values, side="left"), np.searchsorted(current, values, side="left")

    cur_count, ref_count = _first_max_of_difference(
        n2, (n1, n2), (starts + 1, ref_at_or_below), (block_ends, ref_at_or_below), cur_then_ref
    )
    d_minus = -(ref_count / n1 - cur_count / n2)
    ref_below_starts, cur_below_starts = ref_then_cur_below(starts)
    # Within a block, count(ref < c_i) is at most its value at the next block's start.
    ref_below_bound = np.append(ref_below_starts[1:], n1)
    ref_below, cur_below = _first_max_of_difference(
        n2, (n2, n1), (ref_below_starts, cur_below_starts), (ref_below_bound, cur_below_starts), ref_then_cur_below
    )
    d_plus = ref_below / n1 - cur_below / n2
    d_minus = min(max(d_minus, 0.0), 1.0)
    d_plus = max(d_plus, 0.0)
    return d_minus if d_minus > d_plus else d_plus


def _first_max_of_difference(
    size: int,
    weights: tuple[int, int],
    at_starts: tuple[IntArray, IntArray],
    bounds: tuple[IntArray, IntArray],
    counts_at: Callable[[IntArray], tuple[IntArray, IntArray]],
) -> tuple[int, int]:
    """(a_i, b_i) at the first i < size maximising a_i * wa - b_i * wb, for a and b non-decreasing in i.

    `at_starts` holds a and b at the start of every block of KS_BLOCK indices, `bounds` an upper bound
    of a and a lower bound of b over every block, `counts_at` gives a and b at any sorted indices.
    """
    wa, wb = weights
    start_values = at_starts[0] * wa - at_starts[1] * wb
    best = start_values.max()
    upper = bounds[0] * wa - bounds[1] * wb
    # The first start reaching `best` reaches the maximum if nothing exceeds it: past its block only
    # a block that can exceed `best` can hold the first maximum.
    first = int(np.argmax(start_values == best))
    candidates = upper >= best
    candidates[first + 1 :] = upper[first + 1 :] > best
    blocks = np.flatnonzero(candidates)
    if blocks.size > candidates.size // 4:  # searching most values costs more than counting them all
        indices = np.arange(size, dtype=np.int64)
    else:
        indices = (blocks[:, None] * KS_BLOCK + np.arange(KS_BLOCK, dtype=np.int64)).ravel()
        indices = indices[indices < size]  # the last block may be short
    a, b = counts_at(indices)
    winner = int(np.argmax(a * wa - b * wb))
    return int(a[winner]), int(b[winner])


def ks_asymptotic_pvalue(statistic: float, n1: int, n2: int) -> float:
    """The p-value ks_2samp(method='auto') reports when a side has more than KS_EXACT_MAX_N values."""
    m, n = sorted((float(n1), float(n2)), reverse=True)
    p = kstwo_sf(statistic, int(np.round(m * n / (m + n))))
    return float(np.clip(p, 0.0, 1.0))


def kstwo_sf(d: float, n: int) -> float:
    """scipy.stats.kstwo.sf(d, n), fast where scipy is slow.

    For n > 140 and 2.2 <= n*d^2 < 370 scipy evaluates 2 * smirnov(n, d), the Birnbaum-Tingey sum, term
    by term in C: seconds at n = 500,000. The same sum vectorised in log space (betaln keeps the binomial
    coefficients accurate) agrees to about 1e-9 relative and is 10x faster. Where even that is wasted
    (the limiting distribution puts p below KS_TINY_P), the limiting value is returned instead.
    Everywhere else scipy's own kstwo.sf is called.
    """
    t = n * d
    nx_squared = t * d
    if n <= 140 or not 2.2 <= nx_squared < 370.0 or t >= n - 1 or d >= 0.5:
        return float(scipy_stats.kstwo.sf(d, n))
    limiting = float(scipy_stats.kstwobign.sf(d * math.sqrt(n)))
    if limiting < KS_TINY_P:
        return limiting
    return min(2.0 * _smirnov_sf(n, d), 1.0)


def _smirnov_sf(n: int, x: float) -> float:
    """P(D+_n >= x) = x * sum_j C(n, j) (1 - x - j/n)^(n - j) (x + j/n)^(j - 1), j = 0..floor(n(1 - x))."""
    j = np.arange(0, math.floor(n * (1 - x)) + 1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_terms = (
            -math.log(n + 1.0)
            - special.betaln(n - j + 1, j + 1)
            + (n - j) * np.log1p(-x - j / n)
            + (j - 1) * np.log(x + j / n)
        )
    top = float(log_terms.max())
    return float(x * math.exp(top) * np.sum(np.exp(log_terms - top)))


def ks(reference_sorted: FloatArray, current_sorted: FloatArray) -> StatisticResult:
    """Two-sample KS test; the score is the p-value (drift when it is small).

    Up to KS_EXACT_MAX_N values per side this is scipy.stats.ks_2samp(method='auto') itself: its exact
    p-value routine is private (scipy.stats._stats_py._attempt_exact_2kssamp), and calling it directly
    broke silently whenever scipy changed its signature. The public call re-sorts two arrays of at most
    10,000 values and computes the statistic again (a few milliseconds, dwarfed by the exact p-value
    itself); the large inputs this engine is fast on (up to 200,000 reference and millions of current
    values) take the asymptotic path below, which uses only public scipy (kstwo, kstwobign, betaln).
    """
    if (empty := _empty_side(reference_sorted, current_sorted)) is not None:
        return empty
    n1, n2 = reference_sorted.size, current_sorted.size
    if max(n1, n2) <= KS_EXACT_MAX_N:
        exact = scipy_stats.ks_2samp(reference_sorted, current_sorted, alternative="two-sided", method="auto")
        return StatisticResult(value=float(np.clip(exact.pvalue, 0.0, 1.0)), statistic=float(exact.statistic))
    d = ks_statistic_sorted(reference_sorted, current_sorted)
    return StatisticResult(value=ks_asymptotic_pvalue(d, n1, n2), statistic=d)


# --- distances on numeric features -----------------------------------------------------------------


def wasserstein_sorted(reference: FloatArray, current: FloatArray) -> float:
    """The 1-Wasserstein distance of two sorted samples, as an integral of quantile functions.

    W1 = integral over u in (0, 1] of |Q_ref(u) - Q_cur(u)|. Both quantile functions are steps, on the
    grids k/n1 and i/n2, so the integral is a sum over the pieces of the merged grid. Each piece ends
    at a grid point of one side, and where the other side's quantile and the piece's start are is plain
    arithmetic: no value comparison, no search, no scatter, only monotone reads of the two sorted
    samples. Grid points are integers over n1*n2, exact in float64 while n1*n2 < 2**53. Equal sizes
    reduce to the mean absolute difference of the order statistics.
    """
    n1, n2 = reference.size, current.size
    if n1 == n2:
        return float(np.mean(np.abs(reference - current)))
    k = np.arange(1, n1 + 1, dtype=np.float64)  # pieces ending at reference grid point k*n2
    cur_at = np.ceil(k * n2 / n1)  # the current quantile there is current[cur_at - 1]
    ref_widths = k * n2 - np.maximum((k - 1) * n2, (cur_at - 1) * n1)
    total = np.dot(ref_widths, np.abs(reference - current[cur_at.astype(np.int64) - 1]))
    i = np.arange(1, n2 + 1, dtype=np.float64)  # pieces ending at current grid point i*n1
    ref_at = np.ceil(i * n1 / n2)
    # Ties go to the reference piece, so here the piece starts at the last reference point <= i*n1.
    cur_widths = i * n1 - np.maximum((i - 1) * n1, np.floor(i * n1 / n2) * n2)
    total += np.dot(cur_widths, np.abs(reference[ref_at.astype(np.int64) - 1] - current))
    return float(total / (float(n1) * float(n2)))


def normed_wasserstein(
    reference_sorted: FloatArray, current_sorted: FloatArray, reference_std: float
) -> StatisticResult:
    if (empty := _empty_side(reference_sorted, current_sorted)) is not None:
        return empty
    distance = wasserstein_sorted(reference_sorted, current_sorted)
    score = distance / max(reference_std, WASSERSTEIN_MIN_STD)
    return StatisticResult(value=score, statistic=distance)


def decile_edges(reference_sorted: FloatArray) -> FloatArray:
    """Interior bin edges at the reference deciles (duplicates merged: a constant column has one)."""
    if reference_sorted.size == 0:
        return np.empty(0, dtype=np.float64)
    return np.unique(np.quantile(reference_sorted, PSI_QUANTILES))


def binned_counts(sorted_values: FloatArray, edges: FloatArray) -> IntArray:
    """Counts in the bins (-inf, e1], (e1, e2], ..., (ek, inf) of a sorted sample: k binary searches."""
    cuts = np.searchsorted(sorted_values, edges, side="right")
    return np.diff(np.concatenate(([0], cuts, [sorted_values.size]))).astype(np.int64)


def frequencies(counts: IntArray) -> FloatArray:
    """Counts as fractions, with empty cells raised to EMPTY_BIN_FRACTION so logs and ratios exist."""
    fractions = counts / counts.sum()
    return np.where(fractions == 0, EMPTY_BIN_FRACTION, fractions)


def psi_from_counts(reference_counts: IntArray, current_counts: IntArray) -> StatisticResult:
    if (empty := _empty_counts(reference_counts, current_counts)) is not None:
        return empty
    ref, cur = frequencies(reference_counts), frequencies(current_counts)
    value = float(np.sum((cur - ref) * np.log(cur / ref)))
    return StatisticResult(value=value, statistic=value)


def jensen_shannon_from_counts(reference_counts: IntArray, current_counts: IntArray) -> StatisticResult:
    if (empty := _empty_counts(reference_counts, current_counts)) is not None:
        return empty
    value = float(scipy_distance.jensenshannon(frequencies(reference_counts), frequencies(current_counts)))
    return StatisticResult(value=value, statistic=value)


def _empty_counts(reference_counts: IntArray, current_counts: IntArray) -> StatisticResult | None:
    if reference_counts.sum() == 0:
        return not_computable(NO_REFERENCE_VALUES)
    if current_counts.sum() == 0:
        return not_computable(NO_CURRENT_VALUES)
    return None


# --- tests on category counts -----------------------------------------------------------------------


def chi_square(reference_counts: IntArray, current_counts: IntArray) -> StatisticResult:
    """Chi-squared test of independence on the 2-by-k table [reference counts; current counts].

    Columns empty on both sides carry no information and are dropped (scipy refuses zero expected
    frequencies). With a single category left both sides are identical: chi² = 0, p = 1, dof = 0,
    which is what chi2_contingency returns for a 2-by-1 table.
    """
    if (empty := _empty_counts(reference_counts, current_counts)) is not None:
        return empty
    table = np.vstack((reference_counts, current_counts)).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return StatisticResult(value=1.0, statistic=0.0)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    p = float(scipy_stats.chi2.sf(statistic, table.shape[1] - 1))
    return StatisticResult(value=p, statistic=statistic)


def z_test(reference_positive: int, reference_total: int, current_positive: int, current_total: int) -> StatisticResult:
    """Two-sided two-proportion z-test with pooled variance (the share of one of two categories).

    When the pooled share is 0 or 1 both samples hold one and the same value: z = 0, p = 1.
    """
    if reference_total == 0:
        return not_computable(NO_REFERENCE_VALUES)
    if current_total == 0:
        return not_computable(NO_CURRENT_VALUES)
    p1, p2 = reference_positive / reference_total, current_positive / current_total
    pooled = (reference_positive + current_positive) / (reference_total + current_total)
    variance = pooled * (1 - pooled) * (1 / reference_total + 1 / current_total)
    if variance <= 0:
        return StatisticResult(value=1.0, statistic=0.0)
    z = (p1 - p2) / math.sqrt(variance)
    p = float(2 * scipy_stats.norm.sf(abs(z)))
    return StatisticResult(value=min(p, 1.0), statistic=z)


__all__ = [
    "EMPTY_BIN_FRACTION",
    "KS_EXACT_MAX_N",
    "NO_CURRENT_VALUES",
    "NO_REFERENCE_VALUES",
    "StatisticResult",
    "binned_counts",
    "chi_square",
    "decile_edges",
    "finite_sorted",
    "frequencies",
    "jensen_shannon_from_counts",
    "ks",
    "ks_asymptotic_pvalue",
    "ks_statistic_sorted",
    "kstwo_sf",
    "normed_wasserstein",
    "not_computable",
    "psi_from_counts",
    "right_ranks",
    "wasserstein_sorted",
    "z_test",
]
