"""Render README.md from results.json (+ demos.json): `.venv/bin/python benchmarks/drift/readme.py`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import quiet  # noqa: E402

COLUMNS = [
    ("ours", "ours: KS + chi²"),
    ("scipy", "plain scipy"),
    ("nannyml", "NannyML 0.13.1"),
    ("alibi", "alibi-detect 0.13.0"),
    ("evidently", "Evidently 0.7.23"),
    ("sort_bound", "sort both sets (floor)"),
    ("ours_psi", "ours: PSI"),
    ("ours_wasserstein", "ours: normed Wasserstein"),
]

# Passes of our engine and the bound only, after the KS block-bounds change: (label, results file).
KS_BLOCK_PASSES = [
    ("A (ours, then bound)", "results-ks-blocks.json"),
    ("B (bound, then ours)", "results-ks-blocks-bound-first.json"),
]

NOTES = """## Notes, honestly

- Only compare within a row: every tool ran in the same pass, one process per tool and size, on this
  2-core machine (the benchmark refuses to start when the 1-minute load average is above 1.0; the
  load before and after each worker is in results.json).
- NannyML's KS statistic is exact under 10,000 reference rows and binned into 10,000 equal-width
  bins above (its default "auto" computation, kept), so at 100,000 and 1,000,000 rows its D is an
  approximation and its flags can differ from the exact test's near the threshold.
- NannyML's KS threshold is a constant D_crit = 1.358 * sqrt((n + m) / (n * m)) (alpha = 0.05); its
  default (mean + 3 standard deviations of D over reference chunks) needs several reference chunks,
  which a single-window check does not have. Its chi-squared alerts on p < 0.05 by construction
  (0.13.1 ignores a custom chi2 threshold). `run.py` sets `NML_DISABLE_USAGE_LOGGING=1`.
- alibi-detect 0.13 pins numpy < 2, so it runs on numpy 1.x in its own venv; every other tool runs
  on our numpy (see the versions table). Its feature-level flags are at p < 0.05 (its Bonferroni
  correction applies to the batch verdict only).
- Evidently at 1,000,000 rows runs once; every other cell is the median of 3.
- At 10,000 rows both sides are <= 10,000 values, so KS p-values are exact (scipy's exact routine,
  which ks_2samp also calls); that routine dominates our time there.
- Wasserstein: equal sizes on both sides, where W1 is exactly the mean absolute difference of the
  order statistics (our code takes that path). Unequal sizes use the closed-form quantile-piece sum
  (tested against scipy); not benchmarked here.
"""


def seconds(entry: dict[str, Any]) -> str:
    if not entry:
        return "—"
    if "error" in entry:
        return "error"
    runs = len(entry["seconds"])
    return f"{entry['median_seconds']:.3f} s" + ("" if runs > 1 else " (1 run)")


def ratio(a: dict[str, Any], b: dict[str, Any]) -> str:
    if "median_seconds" not in a or "median_seconds" not in b:
        return "—"
    return f"{a['median_seconds'] / b['median_seconds']:.2f}x"


def load_range(entries: list[dict[str, Any]]) -> str:
    loads = [load for entry in entries for load in entry.get("load_average", [])]
    return f"{min(loads):.1f}-{max(loads):.1f}" if loads else "not recorded"


def ks_blocks_section(
    first: dict[str, Any], passes: list[tuple[str, dict[str, Any]]], micro: dict[str, Any] | None
) -> list[str]:
    """Our engine and the bound only, after the KS statistic moved from a full merge to block bounds."""
    lines = [
        "## KS by block bounds: our engine and the sort bound only (peers not re-run)",
        "",
        "`ks_statistic_sorted` no longer merges the whole current column into the reference: it",
        "binary-searches the counts at every 64th current value, bounds each block of 64 by them, and counts",
        "in full only the blocks that can hold the maximum. Each pass ran `run.py` with `DRIFT_BENCH_TOOLS`",
        "set to the two tools, in the order given; the load average is the 1-minute one before and after each",
        'worker, on 2 cores. "Same as first pass": every feature\'s KS D, p-value and flag equal, bit for bit,',
        "those our engine gave in the first pass (which match plain scipy's flags).",
        "",
        "| pass (order) | rows per side | ours: KS + chi² | sort both sets | ours / sort bound | load average "
        "| same as first pass |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for label, results in passes:
        for rows, e in results["sizes"].items():
            before = first["sizes"][rows]["ours"]
            same = all(e["ours"].get(k) == before.get(k) for k in ("ks_d", "p_values", "flagged"))
            lines.append(
                f"| {label} | {int(rows):,} | {seconds(e['ours'])} | {seconds(e['sort_bound'])} | "
                f"{ratio(e['ours'], e['sort_bound'])} | {load_range([e['ours'], e['sort_bound']])} | "
                f"{'yes' if same else 'NO'} |"
            )
    lines.append("")
    if micro:
        lines += [
            f"Per feature, one process (`ks_micro.py`, {micro['rows']:,} float64 per side, median of "
            f"{micro['rounds']} interleaved rounds, load average {micro['load_before'][0]:.1f} before and "
            f"{micro['load_after'][0]:.1f} after); times relative to `np.sort` of both raw columns, wall / CPU:",
            "",
            "| data | ks (sort current + statistic + p) | statistic | previous statistic (merge) "
            "| argsort merge alone | two searchsorted |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for shape, out in micro["shapes"].items():
            wall, cpu = out["median_wall_seconds"], out["median_cpu_seconds"]
            cells = [
                f"{wall[k] / wall['bound']:.2f}x / {cpu[k] / cpu['bound']:.2f}x"
                for k in ("ks", "statistic", "previous statistic", "argsort merge", "two searchsorted")
            ]
            lines.append(f"| {shape} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def peak_rss(entry: dict[str, Any]) -> str:
    return f"{entry['peak_rss_mib']:.0f}" if "peak_rss_mib" in entry else "—"


def per_column_table(
    title: str, sizes: dict[str, dict[str, Any]], cell: Callable[[dict[str, Any]], str]
) -> list[str]:
    """A section with one row per size and one column per COLUMNS entry, each cell `cell(entry)`."""
    lines = ["", title, "", "| rows per side | " + " | ".join(t for _, t in COLUMNS) + " |"]
    lines.append("|---:|" + "---:|" * len(COLUMNS))
    for rows, e in sizes.items():
        lines.append(f"| {int(rows):,} | " + " | ".join(cell(e.get(k, {})) for k, _ in COLUMNS) + " |")
    return lines


def render(
    results: dict[str, Any],
    demos: dict[str, Any] | None,
    rerun: dict[str, Any] | None = None,
    ks_passes: list[tuple[str, dict[str, Any]]] | None = None,
    micro: dict[str, Any] | None = None,
) -> str:
    # a tool left out of a run (DRIFT_BENCH_TOOLS) renders as "—"
    sizes = {rows: {key: entry.get(key, {}) for key, _ in COLUMNS} for rows, entry in results["sizes"].items()}
    lines = [
        "# Drift benchmark: our engine vs plain scipy, NannyML, alibi-detect and Evidently",
        "",
        "Generated by `benchmarks/drift/readme.py` from `results.json` (written by `run.py`) and",
        "`demos.json` (written by `demos.py`). Same seeded data for every tool: 20 numeric + 5 categorical",
        f"features, drift injected in 7 ({', '.join(results['drifted_truth'])}), reference size = current size.",
        f"Median of {results['repeats']} runs in one process per tool and size; machine: "
        f"{results['machine']['cpus']} CPUs, Python {results['machine']['python']}, shared with other work, so",
        "absolute times are noisy: compare within a row.",
        "",
        "## What is timed",
        "",
        "- **ours: KS + chi²** — for each numeric feature: sort the current column (`np.sort`), merge it into",
        "  the reference (already sorted: that happens once, when the Dataset is profiled, and is *not* timed),",
        "  KS statistic and scipy's p-value (exact up to 10,000 values per side, as `ks_2samp` does); for each",
        "  categorical feature: count the current Arrow string column (`pyarrow.compute.value_counts`), align",
        "  with the reference counts (from the profile, not timed), chi-squared test of independence.",
        "  Not timed: reading Parquet, the reference preparation.",
        "- **plain scipy** — `ks_2samp` on the raw columns, `chi2_contingency(correction=False)` on `bincount`",
        "  tables of category codes.",
        "- **NannyML** — `UnivariateDriftCalculator(kolmogorov_smirnov, chi2, chunk_number=1,",
        "  thresholds={'kolmogorov_smirnov': ConstantThreshold(upper=D_crit)})` with D_crit = 1.358·sqrt((n+m)/(n·m))",
        "  (the KS critical value at alpha 0.05); chi2 alerts on its own p < 0.05: `fit(reference)` +",
        "  `calculate(current)`. **alibi-detect** — `TabularDrift(x_ref, p_val=0.05, categories_per_feature)` +",
        "  `predict`.",
        "  **Evidently** — `Report([DataDriftPreset(num_method='ks', cat_method='chisquare')]).run(...)` on",
        "  `Dataset.from_pandas`. Peers' times include their reference-side work (there is no profile-time",
        "  step to exclude in their APIs).",
        "- **sort both sets** — `np.sort` of every numeric column of the reference and of the current set.",
        "- **ours: PSI / normed Wasserstein** — sort the current column, then reference-decile counts",
        "  (10 binary searches) / the quantile-function integral against the sorted reference.",
        "",
        "Peak RSS is each worker process's `ru_maxrss`, interpreter and imports included.",
    ]
    lines += per_column_table("## Seconds (median)", sizes, seconds)
    lines += [
        "",
        "## Ratios (same run)",
        "",
        "| rows per side | Evidently / ours | NannyML / ours | alibi / ours | scipy / ours | ours / sort bound "
        "| PSI / sort bound | Wasserstein / sort bound |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rows, e in sizes.items():
        lines.append(
            f"| {int(rows):,} | {ratio(e['evidently'], e['ours'])} | {ratio(e['nannyml'], e['ours'])} | "
            f"{ratio(e['alibi'], e['ours'])} | {ratio(e['scipy'], e['ours'])} | {ratio(e['ours'], e['sort_bound'])} | "
            f"{ratio(e['ours_psi'], e['sort_bound'])} | {ratio(e['ours_wasserstein'], e['sort_bound'])} |"
        )
    lines += per_column_table("## Peak RSS (MiB)", sizes, peak_rss)
    lines += ["", "## Features flagged (p < 0.05; KS p ≤ 0.05; PSI and Wasserstein ≥ 0.1)", ""]
    truth = set(results["drifted_truth"])
    for rows, e in sizes.items():
        same = e["ours"].get("flagged") == e["scipy"].get("flagged")
        lines.append(f"**{int(rows):,} rows** — ours identical to plain scipy: **{'yes' if same else 'NO'}**")
        lines.append("")
        for key, title in COLUMNS:
            if key not in e or "flagged" not in e[key]:
                continue
            flagged = e[key]["flagged"]
            scored = {f for f in truth if f.startswith("num_")} if key in ("ours_psi", "ours_wasserstein") else truth
            extra = sorted(set(flagged) - truth)
            missed = sorted(scored - set(flagged))
            lines.append(
                f"- {title}: {len(flagged)} flagged, {len(set(flagged) & scored)} of {len(scored)} drifted"
                + (" (numeric features only)" if scored != truth else "")
                + (f"; false positives: {', '.join(extra)}" if extra else "")
                + (f"; missed: {', '.join(missed)}" if missed else "")
            )
        lines.append("")
    if rerun:
        lines += [
            "## Second pass of our tools (after the Wasserstein rewrite), same machine, right after",
            "",
            "The first pass above ran the earlier Wasserstein code (a scatter-based merged grid). This pass",
            "re-runs only our tools and the sort bound, so its ratios are within this pass.",
            "",
            "| rows per side | ours: KS + chi² | ours: PSI | ours: normed Wasserstein | sort both sets "
            "| KS + chi² / sort | PSI / sort | Wasserstein / sort |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for rows, e in rerun["sizes"].items():
            lines.append(
                f"| {int(rows):,} | {seconds(e['ours'])} | {seconds(e['ours_psi'])} | {seconds(e['ours_wasserstein'])} "
                f"| {seconds(e['sort_bound'])} | {ratio(e['ours'], e['sort_bound'])} | "
                f"{ratio(e['ours_psi'], e['sort_bound'])} | {ratio(e['ours_wasserstein'], e['sort_bound'])} |"
            )
        lines.append("")
    if ks_passes:
        lines += ks_blocks_section(results, ks_passes, micro)
    if demos:
        chi, psi, ks = demos["chi_square"], demos["psi"], demos["ks"]
        lines += [
            "## Correctness where peers slip (`demos.py`)",
            "",
            f"- **Chi-squared**: same 5-category distribution on both sides, reference {chi['reference_rows']} rows, "
            f"current {chi['current_rows']:,} rows, {chi['seeds']} seeds. Evidently's goodness-of-fit `chisquare` "
            f"flags {chi['evidently_goodness_of_fit_false_positive_rate']:.0%} of them; our test of independence on "
            f"the 2-by-k table flags {chi['ours_independence_false_positive_rate']:.0%} (the nominal 5%).",
            f"- **PSI** on a lognormal feature drifted by mu +0.4 ({psi['rows']:,} rows per side): Evidently's "
            f"equal-width bins give {psi['evidently_equal_width_psi']:.3f} (flags: {psi['evidently_flags']}); "
            f"reference-decile bins give {psi['ours_reference_decile_psi']:.3f} (flags: {psi['ours_flags']}).",
            f"- **KS exact vs binned** ({ks['feature']}, {ks['rows']:,} rows per side): exact D = "
            f"{ks['exact_d']:.6f}, p = {ks['exact_p']:.3g} (ours: D = {ks['ours_d']:.6f}, p = {ks['ours_p']:.3g}); "
            f"NannyML's binned D = {ks['nannyml_binned_d']:.6f}, which would give p = {ks['nannyml_p_at_its_d']:.3g}.",
            "",
        ]
    lines += versions_section(results)
    return "\n".join(lines) + "\n" + NOTES


def versions_section(results: dict[str, Any]) -> list[str]:
    """Which numpy (and the rest) each tool's worker process ran on."""
    seen: dict[str, dict[str, Any]] = {}
    for size in results["sizes"].values():
        for key, entry in size.items():
            if "versions" in entry:
                seen.setdefault(key, entry["versions"])
    if not seen:
        return []
    names = ("numpy", "scipy", "scikit-learn", "pandas", "pyarrow")
    lines = [
        "## Library versions each tool ran on",
        "",
        "| tool | " + " | ".join(names) + " | tool's own |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for key, title in COLUMNS:
        if key in seen:
            v = seen[key]
            package = {"nannyml": "nannyml", "evidently": "evidently", "alibi": "alibi-detect"}.get(key, "")
            own = f"{package} {v[package]}" if v.get(package) else ""
            lines.append(f"| {title} | " + " | ".join(str(v.get(n) or "—") for n in names) + f" | {own or '—'} |")
    c = results["conditions"]
    lines += [
        "",
        f"Run {c['started']}, {c['cpus']} cores, 1-minute load {c['load_before'][0]:.2f} before and "
        f"{c['load_after'][0]:.2f} after, {c['elapsed_s'] / 60:.1f} min.",
        "",
    ]
    return lines


def valid_or_none(path: Path) -> dict[str, Any] | None:
    """A supplementary results file, only if it was taken under the benchmark rules on a quiet machine."""
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    if quiet.is_valid(data):
        return data
    print(f"{path.name}: not taken under the benchmark rules on a quiet machine: left out", file=sys.stderr)
    return None


def main() -> None:
    results = json.loads((HERE / "results.json").read_text())
    quiet.require_valid(results, HERE / "results.json")
    demos_path = HERE / "demos.json"
    demos = json.loads(demos_path.read_text()) if demos_path.exists() else None  # correctness, not timing
    rerun = valid_or_none(HERE / "results-ours-rerun.json")
    ks_passes = [(label, data) for label, name in KS_BLOCK_PASSES if (data := valid_or_none(HERE / name))]
    micro = valid_or_none(HERE / "ks_micro.json")
    (HERE / "README.md").write_text(render(results, demos, rerun, ks_passes, micro))


if __name__ == "__main__":
    main()
