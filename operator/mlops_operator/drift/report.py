"""A self-contained HTML drift report: summary, per-feature table, one inline SVG plot per feature.

No script, no external stylesheet or font, no network fetch: the file renders the same from a PVC, a
blob store or an e-mail attachment. Every string from the data (feature names, category labels) is
HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from mlops_operator.drift import select
from mlops_operator.drift.reference import CategoricalReference, NumericReference, Reference
from mlops_operator.drift.select import CurrentCategorical, CurrentFeature, CurrentNumeric, Evaluation
from mlops_operator.drift.stats import FloatArray

PLOT_WIDTH: Final = 360
PLOT_HEIGHT: Final = 140
HISTOGRAM_BINS: Final = 30
MAX_BARS: Final = 20
REFERENCE_COLOUR: Final = "#4c78a8"
CURRENT_COLOUR: Final = "#f58518"

STYLE: Final = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:1.4em;margin:0 0 4px}
.summary{display:flex;gap:24px;flex-wrap:wrap;margin:12px 0 20px}
.summary div{background:#f4f4f4;border-radius:6px;padding:8px 14px}
.verdict-Drift{color:#b00020}.verdict-NoDrift{color:#1b7f3b}
table{border-collapse:collapse;margin-bottom:24px}
th,td{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left;font-variant-numeric:tabular-nums}
tr.drifted td{background:#fdecea}
.plots{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0;border:1px solid #eee;padding:6px}
figcaption{font-size:.9em;margin-bottom:4px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}
"""


@dataclass(frozen=True, slots=True)
class Header:
    title: str
    verdict: str
    samples: int
    window: str
    reference: str
    message: str = ""


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3e}"
    return f"{value:.4f}"


def _bars(labels: Sequence[str], reference: FloatArray, current: FloatArray, title: str, numeric_axis: bool) -> str:
    """Paired bars (reference left, current right) of two frequency vectors, as an SVG element."""
    top = float(max(reference.max(initial=0.0), current.max(initial=0.0))) or 1.0
    n = len(labels)
    slot = (PLOT_WIDTH - 40) / max(n, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{PLOT_WIDTH}" height="{PLOT_HEIGHT + 30}" '
        f'role="img" aria-label="{html.escape(title)}" class="plot">'
    ]
    base = PLOT_HEIGHT
    for i in range(n):
        x = 30 + i * slot
        for offset, values, colour, side in (
            (0.0, reference, REFERENCE_COLOUR, "reference"),
            (0.5, current, CURRENT_COLOUR, "current"),
        ):
            height = float(values[i]) / top * (PLOT_HEIGHT - 10)
            width = slot / 2 if not numeric_axis else slot
            xx = x + (offset * slot if not numeric_axis else 0)
            opacity = "1" if not numeric_axis else "0.55"
            parts.append(
                f'<rect class="bar-{side}" x="{xx:.1f}" y="{base - height:.1f}" '
                f'width="{max(width - 1, 0.5):.1f}" '
                f'height="{height:.1f}" fill="{colour}" fill-opacity="{opacity}">'
                f"<title>{html.escape(labels[i])}: {side} {float(values[i]):.3f}</title></rect>"
            )
    parts.append(f'<line x1="30" y1="{base}" x2="{PLOT_WIDTH - 10}" y2="{base}" stroke="#888"/>')
    parts.append(f'<text x="2" y="12" font-size="10">{top:.2f}</text>')
    if n:
        parts.append(f'<text x="30" y="{base + 14}" font-size="10">{html.escape(labels[0][:18])}</text>')
        parts.append(
            f'<text x="{PLOT_WIDTH - 10}" y="{base + 14}" font-size="10" text-anchor="end">'
            f"{html.escape(labels[-1][:18])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def numeric_plot(name: str, reference: NumericReference, current: CurrentNumeric) -> str:
    """Overlaid histograms on equal-width bins over both samples' range (display only)."""
    ref, cur = reference.sorted_values, current.sorted_values
    ends = [a for a in (ref, cur) if a.size]
    if not ends:
        return '<p class="empty">no values</p>'
    low, high = min(float(a[0]) for a in ends), max(float(a[-1]) for a in ends)
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)

    def shares(values: FloatArray) -> FloatArray:
        if values.size == 0:
            return np.zeros(HISTOGRAM_BINS)
        cuts = np.searchsorted(values, edges[1:-1], side="left")
        counts = np.diff(np.concatenate(([0], cuts, [values.size])))
        return counts / values.size

    labels = [f"{edges[i]:.4g}" for i in range(HISTOGRAM_BINS)]
    return _bars(labels, shares(ref), shares(cur), f"{name}: reference vs current", numeric_axis=True)


def categorical_plot(name: str, reference: CategoricalReference, current: CurrentCategorical) -> str:
    labels, ref_counts, cur_counts = select.aligned_category_counts(reference, current.counts)
    ref = ref_counts / max(int(ref_counts.sum()), 1)
    cur = cur_counts / max(int(cur_counts.sum()), 1)
    order = np.argsort(-(ref + cur), kind="stable")[:MAX_BARS]
    return _bars([labels[i] for i in order], ref[order], cur[order], f"{name}: reference vs current", False)


def feature_plot(name: str, reference: NumericReference | CategoricalReference, current: CurrentFeature) -> str:
    if isinstance(reference, NumericReference) and isinstance(current, CurrentNumeric):
        return numeric_plot(name, reference, current)
    if isinstance(reference, CategoricalReference) and isinstance(current, CurrentCategorical):
        return categorical_plot(name, reference, current)
    return '<p class="empty">no plot</p>'


def render(
    header: Header,
    evaluation: Evaluation | None,
    reference: Reference | None = None,
    current: Mapping[str, CurrentFeature] | None = None,
) -> str:
    """The whole report; without an evaluation (not enough data, schema mismatch) only the header."""
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(header.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(header.title)}</h1>",
        '<section class="summary">',
        f'<div>Verdict: <strong id="verdict" class="verdict-{esc(header.verdict)}">'
        f"{esc(header.verdict)}</strong></div>",
        f"<div>Samples: <strong>{header.samples}</strong></div>",
    ]
    if evaluation is not None:
        share = evaluation.drifted_share
        out.append(
            f"<div>Drifted features: <strong>{len(evaluation.drifted)} / "
            f"{len(evaluation.computable)}</strong>"
            f" ({_fmt(share)}; dataset drift at ≥ {evaluation.drift_share:g})</div>"
        )
    out += [
        f"<div>Window: {esc(header.window)}</div>",
        f"<div>Reference: {esc(header.reference)}</div>",
        "</section>",
    ]
    if header.message:
        out.append(f'<p class="message">{esc(header.message)}</p>')
    if evaluation is not None:
        out.append(_table(evaluation))
        if reference is not None and current is not None:
            out.append(
                f'<p class="legend"><span style="background:{REFERENCE_COLOUR}"></span>reference'
                f'<span style="background:{CURRENT_COLOUR}"></span>current</p><section class="plots">'
            )
            for verdict in evaluation.features:
                plot = feature_plot(verdict.name, reference.features[verdict.name], current[verdict.name])
                mark = " (drifted)" if verdict.drifted else ""
                out.append(
                    f'<figure data-feature="{esc(verdict.name)}">'
                    f"<figcaption>{esc(verdict.name)}{mark}</figcaption>"
                    f"{plot}</figure>"
                )
            out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)


def _table(evaluation: Evaluation) -> str:
    esc = html.escape
    rows = [
        '<table id="features"><thead><tr><th>Feature</th><th>Type</th><th>Test</th><th>Score</th>'
        "<th>Statistic</th><th>Threshold</th><th>Drifted</th><th>Note</th></tr></thead><tbody>"
    ]
    for f in evaluation.features:
        kind = "p-value" if f.is_p_value else "distance"
        rows.append(
            f'<tr class="{"drifted" if f.drifted else "stable"}" data-feature="{esc(f.name)}">'
            f"<td>{esc(f.name)}</td><td>{f.kind}</td><td>{esc(f.test.value)} ({kind})</td>"
            f"<td>{_fmt(f.outcome.value)}</td><td>{_fmt(f.outcome.statistic)}</td><td>{_fmt(f.threshold)}</td>"
            f"<td>{'yes' if f.drifted else 'no'}</td><td>{esc(f.outcome.note or '')}</td></tr>"
        )
    for name in evaluation.ignored:
        rows.append(f'<tr class="ignored"><td>{esc(name)}</td><td colspan="7">ignored by the monitor</td></tr>')
    rows.append("</tbody></table>")
    return "".join(rows)


__all__ = ["Header", "categorical_plot", "feature_plot", "numeric_plot", "render"]
