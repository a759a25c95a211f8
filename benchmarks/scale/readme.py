"""Render the tables of benchmarks/scale/README.md from results.json (between the RESULTS markers).

    .venv/bin/python benchmarks/scale/readme.py [--results results.json] [--readme README.md]

Refuses (exit non-zero) when any run in the file was taken on a busy machine (--force-busy) or
without the benchmark rules' record (benchmarks/quiet.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import quiet  # noqa: E402

BEGIN, END = "<!-- BEGIN RESULTS -->", "<!-- END RESULTS -->"
TRANSITIONS = [
    ("retrain_annotation_to_job_created", "retrain annotation → training Job"),
    ("job_complete_to_model_status", "Job complete → Model status"),
    ("drift_result_to_retrain_job", "drift result → retrain Job"),
]


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or not b else f"{a / b:.2f}x"


def reaction_table(runs: dict[str, Any]) -> list[str]:
    lines = [
        "| N Models | transition | ours p50 s | ours p99 s | n | floor p50 s | floor p99 s | ours ÷ floor (p50) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n, run in runs.items():
        for key, title in TRANSITIONS:
            ours = run["ours"]["reaction"].get(key)
            floor = run["floor"]["reaction"].get(key)
            if ours is None:
                continue
            lines.append(
                f"| {int(n):,} | {title} | {_s(ours['p50_s'])} | {_s(ours['p99_s'])} | {ours['n']} "
                f"| {_s(floor['p50_s']) if floor else '—'} | {_s(floor['p99_s']) if floor else '—'} "
                f"| {_ratio(ours['p50_s'], floor['p50_s']) if floor else '—'} |"
            )
    return lines


def _slope(churn: dict[str, Any]) -> str:
    """The RSS slope, ± its standard error where the run recorded one, and the churn's length."""
    value, error = churn["rss_slope_mib_per_hour"], churn.get("rss_slope_stderr_mib_per_hour")
    if value is None:
        return "—"
    minutes = churn["rss_samples"][-1][0] / 60 if churn.get("rss_samples") else None
    text = f"{value} ± {error}" if error is not None else f"{value}"
    return f"{text} ({minutes:.0f} min)" if minutes else text


def cost_table(runs: dict[str, Any]) -> list[str]:
    lines = [
        "| N Models | operator | steady state after s | idle RSS MiB | idle CPU % of one core | idle API req/s "
        "| churn RSS slope MiB/h | churn CPU % | churn API req/s | churn changes |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, run in runs.items():
        for side in ("ours", "floor"):
            r = run[side]
            idle, churn = r["idle"], r["churn"]
            lines.append(
                f"| {int(n):,} | {r['label']} | {r['bootstrap']['to_steady_state_s']:.1f} | {idle['rss_mib']:.0f} "
                f"| {idle['cpu_percent_of_one_core']:.2f} | {idle['api_requests_per_s']:.3f} "
                f"| {_slope(churn)} "
                f"| {churn['cpu_percent_of_one_core']:.2f} | {churn['api_requests_per_s']:.2f} "
                f"| {r.get('background_changes', 0):,} |"
            )
        o, f = run["ours"]["idle"], run["floor"]["idle"]
        lines.append(
            f"| {int(n):,} | ours ÷ floor | — | {_ratio(o['rss_mib'], f['rss_mib'])} "
            f"| {_ratio(o['cpu_percent_of_one_core'], f['cpu_percent_of_one_core'])} "
            f"| {_ratio(o['api_requests_per_s'], f['api_requests_per_s'])} | | | | |"
        )
    return lines


def render(results: dict[str, Any]) -> str:
    runs = dict(sorted(results["runs"].items(), key=lambda kv: int(kv[0])))
    for n, run in runs.items():
        quiet.require_valid(run, f"benchmarks/scale/results.json runs[{n}]")
    header = []
    for n, run in runs.items():
        c, s = run["conditions"], run["settings"]
        header.append(
            f"- N = {int(n):,}: {c['started']}, {c['cpus']} cores, 1-minute load {c['load_before'][0]:.2f} before and "
            f"{c['load_after'][0]:.2f} after; idle {s['idle']:.0f} s, churn {s['churn']:.0f} s at {s['rate']}/s, "
            f"{s['samples']} + {s['drift_samples']} reaction samples; Service CIDR {run['service_cidr']}; "
            f"total {run['elapsed_s'] / 60:.1f} min; kopf {c['versions'].get('kopf')}, "
            f"numpy {c['versions'].get('numpy')}"
        )
    return "\n".join(
        [
            BEGIN,
            *header,
            "",
            "**Reaction times** (our committed write → the operator's result as a watch event; background changes on)",
            "",
            *reaction_table(runs),
            "",
            "**Cost** (the operator process alone; API requests as counted by the apiserver for its identity)",
            "",
            *cost_table(runs),
            END,
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=HERE / "results.json")
    parser.add_argument("--readme", type=Path, default=HERE / "README.md")
    parser.add_argument("--print", action="store_true", help="print the tables instead of writing the README")
    args = parser.parse_args()
    text = render(json.loads(args.results.read_text()))
    if args.print:
        print(text)
        return 0
    readme = args.readme.read_text()
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    args.readme.write_text(readme[:start] + text + readme[end:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
