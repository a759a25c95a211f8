"""One benchmark worker: `python workers.py <tool> <data.npz> <repeats>` prints one JSON line.

Runs in its own process so its peak RSS (ru_maxrss) is its own. Data loading and the conversions into
each tool's input format (pandas frames, string categories) happen before the clock starts; the clock
covers what a drift check costs once the current window is in memory. Our engine's reference side is
prepared (sorted once, categories counted) before the clock starts, as the profile workload does it at
profile time. Peers get no such favour: their timed call includes whatever they do to the reference.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import platform
import resource
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

warnings.filterwarnings("ignore")
ALPHA = 0.05
KS_C_ALPHA = 1.358  # c(0.05) of the two-sample KS test: D_crit = c(alpha) * sqrt((n + m) / (n * m))


def load(path: str) -> dict[str, Any]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def names(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    return [f"num_{i}" for i in range(data["ref_num"].shape[1])], [f"cat_{i}" for i in range(data["ref_cat"].shape[1])]


def frames(data: dict[str, Any]) -> tuple[Any, Any]:
    import pandas as pd

    num, cat = names(data)

    def frame(numeric: np.ndarray, codes: np.ndarray) -> Any:
        out = pd.DataFrame(numeric, columns=num)
        for j, name in enumerate(cat):
            out[name] = np.char.add("c", codes[:, j].astype(str)).astype(object)
        return out

    return frame(data["ref_num"], data["ref_cat"]), frame(data["cur_num"], data["cur_cat"])


def timed(repeats: int, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    seconds, out = [], {}
    for _ in range(repeats):
        start = time.perf_counter()
        out = run()
        seconds.append(time.perf_counter() - start)
    return {"seconds": seconds, **out}


# --- our engine --------------------------------------------------------------------------------------


def ours(data: dict[str, Any], repeats: int, mode: str) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    from mlops_operator.drift import stats
    from mlops_operator.drift.reference import prepare_categorical, prepare_numeric

    num, cat = names(data)
    # Reference preparation = profile time (not timed): sorted samples, deciles, std, category counts.
    refs = [prepare_numeric(n, np.sort(data["ref_num"][:, j])) for j, n in enumerate(num)]
    cur_num = [np.ascontiguousarray(data["cur_num"][:, j]) for j in range(len(num))]
    ref_cats = []
    cur_cats = []
    for j, n in enumerate(cat):
        codes, counts = np.unique(data["ref_cat"][:, j], return_counts=True)
        ref_cats.append(prepare_categorical(n, {f"c{c}": int(k) for c, k in zip(codes, counts, strict=True)}))
        cur_cats.append(pa.array(np.char.add("c", data["cur_cat"][:, j].astype(str)).tolist(), pa.string()))

    def categorical_p_values() -> list[float | None]:
        from mlops_operator.drift.select import aligned_category_counts

        out: list[float | None] = []
        for ref, column in zip(ref_cats, cur_cats, strict=True):
            counted = pc.value_counts(column)
            current = dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True))
            _, r, c = aligned_category_counts(ref, current)
            out.append(stats.chi_square(r, c).value)
        return out

    def full_check() -> dict[str, Any]:
        ks = [stats.ks(ref.sorted_values, stats.finite_sorted(col)) for ref, col in zip(refs, cur_num, strict=True)]
        p = [o.value for o in ks] + categorical_p_values()
        flagged = [n for n, v in zip(num, p[: len(num)], strict=True) if v is not None and v <= ALPHA]
        flagged += [n for n, v in zip(cat, p[len(num) :], strict=True) if v is not None and v < ALPHA]
        return {"flagged": flagged, "p_values": p, "ks_d": [o.statistic for o in ks]}

    def psi() -> dict[str, Any]:
        values = []
        for ref, col in zip(refs, cur_num, strict=True):
            cur = stats.finite_sorted(col)
            values.append(stats.psi_from_counts(ref.decile_counts, stats.binned_counts(cur, ref.decile_edges)).value)
        return {
            "scores": values,
            "flagged": [n for n, v in zip(num, values, strict=True) if v is not None and v >= 0.1],
        }

    def wasserstein() -> dict[str, Any]:
        values = [
            stats.normed_wasserstein(ref.sorted_values, stats.finite_sorted(col), ref.std).value
            for ref, col in zip(refs, cur_num, strict=True)
        ]
        return {
            "scores": values,
            "flagged": [n for n, v in zip(num, values, strict=True) if v is not None and v >= 0.1],
        }

    return timed(repeats, {"full": full_check, "psi": psi, "wasserstein": wasserstein}[mode])


def sort_bound(data: dict[str, Any], repeats: int) -> dict[str, Any]:
    ref = [np.ascontiguousarray(data["ref_num"][:, j]) for j in range(data["ref_num"].shape[1])]
    cur = [np.ascontiguousarray(data["cur_num"][:, j]) for j in range(data["cur_num"].shape[1])]

    def run() -> dict[str, Any]:
        for a, b in zip(ref, cur, strict=True):
            np.sort(a)
            np.sort(b)
        return {}

    return timed(repeats, run)


def plain_scipy(data: dict[str, Any], repeats: int) -> dict[str, Any]:
    """The plain reference: ks_2samp per numeric column, chi2_contingency (no Yates) per categorical one."""
    from scipy import stats as scipy_stats

    num, cat = names(data)

    def run() -> dict[str, Any]:
        p = [float(scipy_stats.ks_2samp(data["ref_num"][:, j], data["cur_num"][:, j]).pvalue) for j in range(len(num))]
        for j in range(len(cat)):
            ref, cur = data["ref_cat"][:, j], data["cur_cat"][:, j]
            k = int(max(ref.max(), cur.max())) + 1
            table = np.vstack([np.bincount(ref, minlength=k), np.bincount(cur, minlength=k)])
            table = table[:, table.sum(axis=0) > 0]
            p.append(float(scipy_stats.chi2_contingency(table, correction=False).pvalue))
        flagged = [n for n, v in zip(num, p, strict=False) if v <= ALPHA]
        flagged += [n for n, v in zip(cat, p[len(num) :], strict=True) if v < ALPHA]
        return {"flagged": flagged, "p_values": p}

    return timed(repeats, run)


# --- peers -------------------------------------------------------------------------------------------


def evidently(data: dict[str, Any], repeats: int) -> dict[str, Any]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    num, cat = names(data)
    ref_df, cur_df = frames(data)
    definition = DataDefinition(numerical_columns=num, categorical_columns=cat)

    def run() -> dict[str, Any]:
        reference = Dataset.from_pandas(ref_df, data_definition=definition)
        current = Dataset.from_pandas(cur_df, data_definition=definition)
        report = Report([DataDriftPreset(num_method="ks", cat_method="chisquare")])
        snapshot = report.run(current, reference)
        flagged = []
        for metric in snapshot.dict()["metrics"]:
            config = metric.get("config") or {}
            if config.get("type") == "evidently:metric_v2:ValueDrift":
                column, threshold, value = config["column"], float(config["threshold"]), float(metric["value"])
                if (value <= threshold) if column.startswith("num_") else (value < threshold):
                    flagged.append(column)
        return {"flagged": sorted(flagged, key=lambda c: (c[:3] != "num", int(c.split("_")[1])))}

    return timed(repeats, run)


def ks_critical_value(n: int, m: int, c_alpha: float = KS_C_ALPHA) -> float:
    """The two-sample KS statistic above which p < alpha (asymptotic), for sample sizes n and m."""
    return c_alpha * math.sqrt((n + m) / (n * m))


def nannyml(data: dict[str, Any], repeats: int) -> dict[str, Any]:
    """NannyML's univariate calculator with constant thresholds, so its flags mean p < 0.05 like the
    others'. Read from nannyml 0.13.1's source (drift/univariate/methods.py, calculator.py):
    - kolmogorov_smirnov alerts when the statistic D > the upper threshold: ConstantThreshold(upper=
      D_crit at alpha 0.05 for these sizes). Its default, StandardDeviationThreshold over reference
      chunks, cannot be computed from the one chunk a window check has. D is exact (ks_2samp) under
      10,000 reference rows and binned into 10,000 equal-width bins above ("auto", kept: the default);
    - chi2 ignores custom thresholds (the calculator warns and drops them) and alerts on its own
      p-value < 0.05 from chi2_contingency, which is already the constant-threshold equivalent at the
      same alpha: nothing to configure."""
    import nannyml as nml
    from nannyml.thresholds import ConstantThreshold

    num, cat = names(data)
    ref_df, cur_df = frames(data)
    d_crit = ks_critical_value(len(ref_df), len(cur_df))

    def run() -> dict[str, Any]:
        calculator = nml.UnivariateDriftCalculator(
            column_names=num + cat,
            continuous_methods=["kolmogorov_smirnov"],
            categorical_methods=["chi2"],
            chunk_number=1,
            thresholds={"kolmogorov_smirnov": ConstantThreshold(upper=d_crit)},
        )
        calculator.fit(ref_df)
        result = calculator.calculate(cur_df).filter(period="analysis").to_df()
        flagged, ks_d = [], []
        for column in num + cat:
            method = "kolmogorov_smirnov" if column in num else "chi2"
            if bool(result[(column, method, "alert")].iloc[-1]):
                flagged.append(column)
            if column in num:
                ks_d.append(float(result[(column, method, "value")].iloc[-1]))
        return {"flagged": flagged, "ks_d": ks_d, "ks_threshold": d_crit}

    return timed(repeats, run)


def alibi(data: dict[str, Any], repeats: int) -> dict[str, Any]:
    from alibi_detect.cd import TabularDrift

    num, cat = names(data)
    x_ref = np.hstack([data["ref_num"], data["ref_cat"].astype(np.float64)])
    x_cur = np.hstack([data["cur_num"], data["cur_cat"].astype(np.float64)])
    categories = {len(num) + j: None for j in range(len(cat))}

    def run() -> dict[str, Any]:
        detector = TabularDrift(x_ref, p_val=ALPHA, categories_per_feature=categories)
        prediction = detector.predict(x_cur, drift_type="feature")
        # Feature-level verdicts at p < 0.05 (the Bonferroni correction applies to the batch verdict only).
        flags = np.asarray(prediction["data"]["is_drift"]).astype(bool)
        return {"flagged": [n for n, f in zip(num + cat, flags, strict=True) if f]}

    return timed(repeats, run)


def main() -> None:
    tool, path, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
    data = load(path)
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "ours": lambda: ours(data, repeats, "full"),
        "ours_psi": lambda: ours(data, repeats, "psi"),
        "ours_wasserstein": lambda: ours(data, repeats, "wasserstein"),
        "sort_bound": lambda: sort_bound(data, repeats),
        "scipy": lambda: plain_scipy(data, repeats),
        "evidently": lambda: evidently(data, repeats),
        "nannyml": lambda: nannyml(data, repeats),
        "alibi": lambda: alibi(data, repeats),
    }
    out = runners[tool]()
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["versions"] = versions()
    print(json.dumps(out))


def versions() -> dict[str, str | None]:
    """What this worker ran on (the numpy a peer's venv holds may differ from ours)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "scikit-learn", "pandas", "pyarrow", "nannyml", "evidently", "alibi-detect"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


if __name__ == "__main__":
    main()
