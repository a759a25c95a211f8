"""Where peers slip, measured: run with the peer venv, `PYTHONPATH=operator`, prints one JSON line.

1. Chi-squared: Evidently's `chisquare` is a goodness-of-fit test that treats reference proportions as
   exact. Both sides drawn from the same 5-category distribution (small reference, large current),
   200 seeds: the share of seeds each test flags at p < 0.05 (a correct test flags about 5%).
2. PSI on a lognormal feature with drift (mu +0.4): Evidently's psi (equal-width bins over the combined
   range) vs reference-decile bins.
3. KS: NannyML bins the KS statistic (10,000 buckets); exact D and p from ks_2samp vs NannyML's D.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from mlops_operator.drift import stats

warnings.filterwarnings("ignore")


def chi_square_false_positives(seeds: int = 200, reference_rows: int = 300, current_rows: int = 100_000) -> dict:
    from evidently.legacy.calculations.stattests.chisquare_stattest import _chi_stat_test

    p = np.array([0.4, 0.25, 0.15, 0.12, 0.08])
    evidently_flags = ours_flags = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        reference = rng.choice(5, reference_rows, p=p)
        current = rng.choice(5, current_rows, p=p)
        _, drifted = _chi_stat_test(pd.Series(reference), pd.Series(current), "cat", 0.05)
        evidently_flags += bool(drifted)
        outcome = stats.chi_square(np.bincount(reference, minlength=5), np.bincount(current, minlength=5))
        ours_flags += outcome.value is not None and outcome.value < 0.05
    return {
        "seeds": seeds,
        "reference_rows": reference_rows,
        "current_rows": current_rows,
        "evidently_goodness_of_fit_false_positive_rate": evidently_flags / seeds,
        "ours_independence_false_positive_rate": ours_flags / seeds,
    }


def psi_lognormal(rows: int = 1_000_000) -> dict:
    from evidently.legacy.calculations.stattests.psi import _psi

    rng = np.random.default_rng(11)
    reference = rng.lognormal(0, 1, rows)
    current = rng.lognormal(0.4, 1, rows)
    evidently_value, evidently_drift = _psi(pd.Series(reference), pd.Series(current), "num", 0.1)
    ref_sorted, cur_sorted = np.sort(reference), np.sort(current)
    edges = stats.decile_edges(ref_sorted)
    ours = stats.psi_from_counts(stats.binned_counts(ref_sorted, edges), stats.binned_counts(cur_sorted, edges))
    return {
        "rows": rows,
        "evidently_equal_width_psi": float(evidently_value),
        "evidently_flags": bool(evidently_drift),
        "ours_reference_decile_psi": ours.value,
        "ours_flags": ours.value is not None and ours.value >= 0.1,
    }


def ks_exact_vs_binned(rows: int = 200_000) -> dict:
    import nannyml as nml

    rng = np.random.default_rng(12)
    # A heavy-tailed feature: equal-width buckets put most values into a few buckets.
    reference = rng.standard_cauchy(rows)
    current = rng.standard_cauchy(rows) * 1.02
    calculator = nml.UnivariateDriftCalculator(
        column_names=["x"], continuous_methods=["kolmogorov_smirnov"], chunk_number=1
    )
    calculator.fit(pd.DataFrame({"x": reference}))
    result = calculator.calculate(pd.DataFrame({"x": current})).filter(period="analysis").to_df()
    nannyml_d = float(result[("x", "kolmogorov_smirnov", "value")].iloc[-1])
    exact = scipy_stats.ks_2samp(reference, current)
    ours = stats.ks(np.sort(reference), np.sort(current))
    return {
        "rows": rows,
        "feature": "standard Cauchy, current scaled by 1.02",
        "exact_d": float(exact.statistic),
        "exact_p": float(exact.pvalue),
        "ours_d": ours.statistic,
        "ours_p": ours.value,
        "nannyml_binned_d": nannyml_d,
        "nannyml_p_at_its_d": float(scipy_stats.kstwo.sf(nannyml_d, round(rows / 2))),
    }


if __name__ == "__main__":
    print(json.dumps({"chi_square": chi_square_false_positives(), "psi": psi_lognormal(), "ks": ks_exact_vs_binned()}))
