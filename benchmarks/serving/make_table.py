"""Render results.json as the Markdown tables of README.md (between the BEGIN/END RESULTS markers).

usage: python make_table.py results.json [--write README.md]

Refuses (exit non-zero) results taken on a busy machine (--force-busy) or without the benchmark
rules' record (benchmarks/quiet.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import quiet

BEGIN, END = "<!-- BEGIN RESULTS -->", "<!-- END RESULTS -->"
CELLS = ("1x1", "1x16", "64x1", "64x16")
TITLES = {"lr": "LogisticRegression (20 features)", "rf": "RandomForest (100 trees, depth 10, 20 features)"}
PEER_LABELS = {"mlserver_default": "MLServer default", "mlserver_pw0": "MLServer pw 0", "kserve": "KServe"}


def _fmt(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _cell(entry: dict[str, Any], cell: str, field: str, digits: int = 0) -> str:
    c = entry["cells"].get(cell)
    return _fmt(c[field], digits) if c else "—"


def server_table(results: dict[str, Any], key: str) -> list[str]:
    servers = results["servers"][key]
    bare = results["bare_predict"].get(key, {})
    lines = [
        "| server | 1 row c=1 req/s | p50 ms | 1 row c=16 req/s | p99 ms | 64 rows c=1 rows/s | p50 ms "
        "| 64 rows c=16 rows/s | p99 ms | RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    if bare:
        lines.append(
            f"| bare `predict`, separate process, one core | {_fmt(bare['1']['calls_per_s'])} calls/s "
            f"| {_fmt(bare['1']['ms_per_call'], 3)} | — | — | {_fmt(bare['64']['rows_per_s'])} "
            f"| {_fmt(bare['64']['ms_per_call'], 3)} | — | — | — |"
        )
    for entry in servers.values():
        lines.append(
            f"| {entry['label']} | {_cell(entry, '1x1', 'req_per_s')} | {_cell(entry, '1x1', 'p50_ms', 2)} "
            f"| {_cell(entry, '1x16', 'req_per_s')} | {_cell(entry, '1x16', 'p99_ms', 1)} "
            f"| {_cell(entry, '64x1', 'rows_per_s')} | {_cell(entry, '64x1', 'p50_ms', 2)} "
            f"| {_cell(entry, '64x16', 'rows_per_s')} | {_cell(entry, '64x16', 'p99_ms', 1)} "
            f"| {_fmt(entry.get('rss_mib'))} |"
        )
    return lines


def ratio_table(results: dict[str, Any], key: str) -> list[str]:
    summary = results["summary"]
    rows: list[tuple[str, list[str]]] = []

    def line(title: str, get: Any) -> None:
        values = []
        for cell in CELLS:
            s = summary.get(f"{key}_{cell}")
            value = get(s) if s else None
            values.append(f"{value:.2f}x" if isinstance(value, float) else (value or "—"))
        rows.append((title, values))

    line("minimal uvicorn + Starlette + orjson endpoint (req/s)", lambda s: s["ratio_to_reference"])
    line("bare `predict` (rows/s)", lambda s: s["ratio_to_bare_predict_rows"])
    line(
        "best peer (req/s)",
        lambda s: f"{s['ratio_to_best_peer']:.2f}x ({PEER_LABELS.get(s['best_peer'], s['best_peer'])})"
        if s["best_peer"] and s["ratio_to_best_peer"] is not None
        else None,
    )
    for peer, label in PEER_LABELS.items():
        line(f"{label} (req/s)", lambda s, p=peer: s["ratio_to_peer"].get(p))
    line(
        "p99, ours vs best peer (ms)",
        lambda s: f"{s['ours_p99_ms']:.1f} vs {s['best_peer_p99_ms']:.1f}" if s["best_peer"] else None,
    )
    return [
        "| ours ÷ | 1 row c=1 | 1 row c=16 | 64 rows c=1 | 64 rows c=16 |",
        "|---|---:|---:|---:|---:|",
        *(f"| {title} | " + " | ".join(values) + " |" for title, values in rows),
    ]


def notes(results: dict[str, Any]) -> list[str]:
    out = []
    costs = {k: v["collection_cost"] for k, v in results["summary"].items() if "collection_cost" in v}
    if costs:
        out.append(
            "- Collection at 100% sampling (ours_collect ÷ ours, each run alone) costs "
            + ", ".join(f"{k.replace('_', ' ')} {v:.0%}" for k, v in costs.items() if v is not None)
            + " of throughput."
        )
    checks = {
        f"{key}/{server}": entry["compat"]
        for key, servers in results["servers"].items()
        for server, entry in servers.items()
        if "compat" in entry
    }
    if checks:
        out.append(
            "- KServe's own `InferenceRESTClient` (InferRequest → InferResponse) against: "
            + ", ".join(f"{k} {'ok' if v.get('ok') else 'FAILED'}" for k, v in checks.items())
        )
    non_2xx = sum(
        c["non_2xx"] for servers in results["servers"].values() for e in servers.values() for c in e["cells"].values()
    )
    out.append(f"- Non-2xx responses over all runs: {non_2xx}.")
    return out


def render(results: dict[str, Any]) -> str:
    c, st = results["conditions"], results["settings"]
    versions = c["versions"]
    peers = c.get("peer_versions", {})

    def peer(name: str, package: str) -> str:
        v = peers.get(name, {})
        return f"{package} {v.get(package)} on numpy {v.get('numpy')}, scikit-learn {v.get('scikit-learn')}"

    parts = [
        BEGIN,
        f"Run {c['started']}: {c['cpus']} cores, Python {versions['python']}, 1-minute load {c['load_before'][0]:.2f} "
        f"before and {c['load_after'][0]:.2f} after; `{st['load_generator']}`, each server alone, "
        f"{st['duration_s']} s per run, median of {st['repeats']}; workers {st['workers']} for ours and the "
        f"minimal endpoint; total {results['elapsed_s'] / 60:.1f} min.",
        f"Versions: ours numpy {versions.get('numpy')}, scikit-learn {versions.get('scikit-learn')}, uvicorn "
        f"{versions.get('uvicorn')}; {peer('reference', 'starlette')}; {peer('mlserver', 'mlserver')}; "
        f"{peer('kserve', 'kserve')}.",
        "",
    ]
    for key in results["servers"]:
        parts += [f"**{TITLES.get(key, key)}**", "", *server_table(results, key), "", *ratio_table(results, key), ""]
    parts += [*notes(results), END]
    return "\n".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", type=Path)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    results = json.loads(args.results.read_text())
    quiet.require_valid(results, args.results)
    text = render(results)
    if args.write is None:
        print(text)
        return
    readme = args.write.read_text()
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    args.write.write_text(readme[:start] + text + readme[end:])


if __name__ == "__main__":
    main()
