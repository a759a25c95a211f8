"""Render results.json as the Markdown tables of README.md (between the BEGIN/END RESULTS markers).

usage: python make_table.py results.json [--write README.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- BEGIN RESULTS -->", "<!-- END RESULTS -->"
PEERS = ("mlserver_default", "mlserver_pw0", "kserve")


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _cell(entry: dict[str, Any], cell: str, field: str, digits: int = 0) -> str:
    c = entry["cells"].get(cell)
    return _fmt(c[field], digits) if c else "—"


def lr_table(results: dict[str, Any]) -> list[str]:
    lr = results["servers"]["lr"]
    bare = results["bare_predict"]["lr"]
    lines = [
        "| server | 1 row c=1 p50 ms | 1 row c=1 req/s | 1 row c=16 req/s | p99 ms | 64 rows c=1 rows/s "
        "| 64 rows c=16 rows/s | p99 ms | RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| bare `model.predict` in process (one core) | {_fmt(bare['1']['ms_per_call'], 3)} "
        f"| {_fmt(bare['1']['calls_per_s'])} calls/s | — | — | {_fmt(bare['64']['rows_per_s'])} | — | — | — |",
    ]
    for entry in lr.values():
        lines.append(
            f"| {entry['label']} | {_cell(entry, '1x1', 'p50_ms', 2)} | {_cell(entry, '1x1', 'req_per_s')} "
            f"| {_cell(entry, '1x16', 'req_per_s')} | {_cell(entry, '1x16', 'p99_ms', 1)} "
            f"| {_cell(entry, '64x1', 'rows_per_s')} | {_cell(entry, '64x16', 'rows_per_s')} "
            f"| {_cell(entry, '64x16', 'p99_ms', 1)} | {_fmt(entry['rss_mib'])} |"
        )
    return lines


def rf_table(results: dict[str, Any]) -> list[str]:
    rf = results["servers"]["rf"]
    bare = results["bare_predict"]["rf"]
    lines = [
        "| server | 1 row c=16 req/s | p99 ms | 64 rows c=16 rows/s | p99 ms | RSS MiB |",
        "|---|---:|---:|---:|---:|---:|",
        f"| bare `model.predict` in process (one core) | {_fmt(bare['1']['calls_per_s'])} calls/s | — "
        f"| {_fmt(bare['64']['rows_per_s'])} | — | — |",
    ]
    for entry in rf.values():
        lines.append(
            f"| {entry['label']} | {_cell(entry, '1x16', 'req_per_s')} | {_cell(entry, '1x16', 'p99_ms', 1)} "
            f"| {_cell(entry, '64x16', 'rows_per_s')} | {_cell(entry, '64x16', 'p99_ms', 1)} "
            f"| {_fmt(entry['rss_mib'])} |"
        )
    return lines


def ratio_table(results: dict[str, Any]) -> list[str]:
    lr = results["servers"]["lr"]
    lines = [
        "| ours (workers=1) ÷ peer, LogisticRegression | 1 row c=1 | 1 row c=16 | 64 rows c=1 | 64 rows c=16 |",
        "|---|---:|---:|---:|---:|",
    ]
    for peer in PEERS:
        if peer not in lr:
            continue
        row = [lr[peer]["label"]]
        for cell in ("1x1", "1x16", "64x1", "64x16"):
            row.append(f"{lr['ours']['cells'][cell]['req_per_s'] / lr[peer]['cells'][cell]['req_per_s']:.2f}x")
        lines.append("| " + " | ".join(row) + " |")
    bare = results["bare_predict"]["lr"]
    row = ["bare `model.predict` (rows/s)"]
    for cell in ("1x1", "1x16", "64x1", "64x16"):
        row.append(f"{lr['ours']['cells'][cell]['rows_per_s'] / bare[cell.split('x')[0]]['rows_per_s']:.2f}x")
    lines.append("| " + " | ".join(row) + " |")
    return lines


def acceptance(results: dict[str, Any]) -> list[str]:
    s = results["summary"]
    one, many = s["lr_1x16"], s["lr_64x16"]
    rf = s.get("rf_ours_rows_per_s_vs_bare", {})
    cost = s.get("collection_cost", {})
    ok = "✅"
    no = "❌"
    lines = [
        f"- LR 1 row c=16: {one['ratio_to_best_peer']:.2f}x the best peer ({one['best_peer']}); bar ≥ 2x "
        f"{ok if one['ratio_to_best_peer'] >= 2 else no}; p99 {one['ours_p99_ms']:.1f} ms vs "
        f"{one['best_peer_p99_ms']:.1f} ms {ok if one['ours_p99_ms'] <= one['best_peer_p99_ms'] else no}",
        f"- LR 64 rows c=16: {many['ratio_to_best_peer']:.2f}x the best peer ({many['best_peer']}); bar ≥ 1.5x "
        f"{ok if many['ratio_to_best_peer'] >= 1.5 else no}; p99 {many['ours_p99_ms']:.1f} ms vs "
        f"{many['best_peer_p99_ms']:.1f} ms {ok if many['ours_p99_ms'] <= many['best_peer_p99_ms'] else no}",
    ]
    if rf:
        worst = min(rf.values())
        lines.append(
            "- RandomForest rows/s ÷ bare predict: "
            + ", ".join(f"{cell} {v:.2f}" for cell, v in rf.items())
            + f"; bar ≥ 0.85 {ok if worst >= 0.85 else no}"
        )
    if cost:
        worst_cost = max(cost.values())
        lines.append(
            "- collection at 100% sampling costs "
            + ", ".join(f"{cell} {v:.0%}" for cell, v in cost.items())
            + f" of throughput; bar ≤ 15% {ok if worst_cost <= 0.15 else no}"
        )
    compat = results.get("compat", {})
    if compat:
        lines.append(
            "- KServe's own `InferenceRESTClient` (InferRequest → InferResponse) against: "
            + ", ".join(f"{k} {'ok' if v.get('ok') else 'FAILED'}" for k, v in compat.items())
        )
    return lines


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    st = results["settings"]
    parts = [
        BEGIN,
        f"Run: {m['cpus']} cores, Python {m['python']}, scikit-learn {m['sklearn']}, load average at start "
        f"{m['load_average_at_start'][0]:.1f}; wrk, {st['duration_s']} s per run, median of {st['repeats']}, "
        f"round-robin across servers; total {results['elapsed_s'] / 60:.1f} min.",
        "",
        "**LogisticRegression** (20 features)",
        "",
        *lr_table(results),
        "",
        *ratio_table(results),
        "",
        "**RandomForest** (100 trees, depth 10, 20 features)"
        + (
            f" (second run, load average at start {results['rf_rerun']['load_average_at_start'][0]:.1f}: "
            "re-measured after model-bound predictions moved to a thread pool)"
            if "rf_rerun" in results
            else ""
        ),
        "",
        *rf_table(results),
        "",
        "**Acceptance (issue 3)**",
        "",
        *acceptance(results),
        END,
    ]
    return "\n".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", type=Path)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    text = render(json.loads(args.results.read_text()))
    if args.write is None:
        print(text)
        return
    readme = args.write.read_text()
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    args.write.write_text(readme[:start] + text + readme[end:])


if __name__ == "__main__":
    main()
