"""A self-contained HTML drift report: summary, per-feature table, one inline SVG plot per feature.

No script, no external stylesheet or font, no network fetch: the file renders the same from a PVC, a
blob store or an e-mail attachment. Every string from the data (feature names, category labels) is
HTML-escaped.

Per feature the table and the plot caption give the values each side contributed (n) and the missing
share of each side (null, NaN and ±inf). Categorical plots name every category shown on their axis;
numeric plots mark the reference's 5/25/50/75/95 % quantiles under the axis.

Further sections (a live-quality history, say) are passed in as `ReportSection`s and placed after the
plots; their body is HTML the caller has built and escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np

from mlops_operator.api.plans import QualityPoint
from mlops_operator.api.results import LiveQualityResult, PredictionDriftResult
from mlops_operator.api.v1alpha1.rollout import ShadowLiveQuality
from mlops_operator.drift import features, select
from mlops_operator.drift.select import Evaluation, FeatureVerdict
from mlops_operator.drift.stats import FloatArray

PLOT_WIDTH: Final = 360
PLOT_HEIGHT: Final = 140
LEFT: Final = 30  # x of the plot area's left edge (room for the y label)
RIGHT: Final = 10
HISTOGRAM_BINS: Final = 30
MAX_BARS: Final = 20
MIN_SLOT: Final = 16  # px per category, so every category label fits under its bars
LABEL_CHARS: Final = 14  # category labels longer than this are cut (the full one is in the tooltip)
QUANTILE_TICKS: Final = (0.05, 0.25, 0.5, 0.75, 0.95)
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
.sizes{color:#555;font-size:.85em}
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


@dataclass(frozen=True, slots=True)
class ReportSection:
    """An extra section after the plots. `body_html` is trusted: the caller escapes its data."""

    id: str
    title: str
    body_html: str


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3e}"
    return f"{value:.4f}"


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share:.1%}"


def _svg_open(width: float, height: float, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'role="img" aria-label="{html.escape(title)}" class="plot">'
    )


def _bar(side: str, x: float, width: float, share: float, top: float, label: str, opacity: str) -> str:
    height = share / top * (PLOT_HEIGHT - 10)
    colour = REFERENCE_COLOUR if side == "reference" else CURRENT_COLOUR
    return (
        f'<rect class="bar-{side}" x="{x:.1f}" y="{PLOT_HEIGHT - height:.1f}" width="{max(width - 1, 0.5):.1f}" '
        f'height="{height:.1f}" fill="{colour}" fill-opacity="{opacity}">'
        f"<title>{html.escape(label)}: {side} {share:.3f}</title></rect>"
    )


def _axes(width: float, top: float) -> list[str]:
    return [
        f'<line x1="{LEFT}" y1="{PLOT_HEIGHT}" x2="{width - RIGHT}" y2="{PLOT_HEIGHT}" stroke="#888"/>',
        f'<text x="2" y="12" font-size="10">{top:.2f}</text>',
    ]


def category_bars(labels: Sequence[str], reference: FloatArray, current: FloatArray, title: str) -> str:
    """Paired bars (reference left, current right) with every category named under its pair."""
    top = float(max(reference.max(initial=0.0), current.max(initial=0.0))) or 1.0
    width = max(PLOT_WIDTH, LEFT + RIGHT + MIN_SLOT * len(labels))
    slot = (width - LEFT - RIGHT) / max(len(labels), 1)
    parts = [_svg_open(width, PLOT_HEIGHT + 80, title)]
    for i, label in enumerate(labels):
        x = LEFT + i * slot
        parts.append(_bar("reference", x, slot / 2, float(reference[i]), top, label, "1"))
        parts.append(_bar("current", x + slot / 2, slot / 2, float(current[i]), top, label, "1"))
        short = label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
        cx, cy = x + slot / 2, PLOT_HEIGHT + 10
        parts.append(
            f'<text class="axis-label" x="{cx:.1f}" y="{cy}" font-size="9" text-anchor="end" '
            f'transform="rotate(-50 {cx:.1f} {cy})"><title>{html.escape(label)}</title>{html.escape(short)}</text>'
        )
    parts += _axes(width, top)
    parts.append("</svg>")
    return "".join(parts)


def histogram(
    edges: FloatArray, reference: FloatArray, current: FloatArray, ticks: Sequence[tuple[float, float]], title: str
) -> str:
    """Overlaid histograms on `edges`, with the range ends and the reference's (quantile, value) `ticks`."""
    top = float(max(reference.max(initial=0.0), current.max(initial=0.0))) or 1.0
    low, high = float(edges[0]), float(edges[-1])
    span = (PLOT_WIDTH - LEFT - RIGHT) / (high - low)
    slot = (PLOT_WIDTH - LEFT - RIGHT) / (edges.size - 1)
    parts = [_svg_open(PLOT_WIDTH, PLOT_HEIGHT + 44, title)]
    for i in range(edges.size - 1):
        label = f"{edges[i]:.4g} to {edges[i + 1]:.4g}"
        for side, shares in (("reference", reference), ("current", current)):
            parts.append(_bar(side, LEFT + i * slot, slot, float(shares[i]), top, label, "0.55"))
    parts += _axes(PLOT_WIDTH, top)
    for row, (q, value) in enumerate(ticks):
        x = LEFT + (value - low) * span
        y = PLOT_HEIGHT + 12 + 10 * (row % 2)  # alternate rows so close quantiles do not overlap
        parts.append(
            f'<g class="quantile-tick"><line x1="{x:.1f}" y1="{PLOT_HEIGHT}" x2="{x:.1f}" y2="{y - 8}" '
            f'stroke="#444"/><text x="{x:.1f}" y="{y}" font-size="9" text-anchor="middle">'
            f"<title>reference {q:.0%} quantile</title>{value:.3g}</text></g>"
        )
    end_y = PLOT_HEIGHT + 40
    parts.append(f'<text class="range" x="{LEFT}" y="{end_y}" font-size="9">min {low:.4g}</text>')
    parts.append(
        f'<text class="range" x="{PLOT_WIDTH - RIGHT}" y="{end_y}" font-size="9" text-anchor="end">'
        f"max {high:.4g}</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def numeric_plot(name: str, reference: features.NumericReference, current: features.CurrentNumeric) -> str:
    """Overlaid histograms on equal-width bins over both samples' range (display only)."""
    ref, cur = reference.sorted_values, current.sorted_values
    ends = [a for a in (ref, cur) if a.size]
    if not ends:
        return '<p class="empty">no finite values on either side</p>'
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

    ticks = list(zip(QUANTILE_TICKS, np.quantile(ref, QUANTILE_TICKS).tolist(), strict=True)) if ref.size else []
    return histogram(edges, shares(ref), shares(cur), ticks, f"{name}: reference vs current")


def categorical_plot(name: str, reference: features.CategoricalReference, current: features.CurrentCategorical) -> str:
    labels, ref_counts, cur_counts = select.aligned_category_counts(reference, current.counts)
    ref = ref_counts / max(int(ref_counts.sum()), 1)
    cur = cur_counts / max(int(cur_counts.sum()), 1)
    order = np.argsort(-(ref + cur), kind="stable")[:MAX_BARS]
    return category_bars([labels[i] for i in order], ref[order], cur[order], f"{name}: reference vs current")


def feature_plot(
    name: str, reference: features.NumericReference | features.CategoricalReference, current: features.CurrentFeature
) -> str:
    if isinstance(reference, features.NumericReference) and isinstance(current, features.CurrentNumeric):
        return numeric_plot(name, reference, current)
    if isinstance(reference, features.CategoricalReference) and isinstance(current, features.CurrentCategorical):
        return categorical_plot(name, reference, current)
    return '<p class="empty">no plot</p>'


def _sizes(verdict: FeatureVerdict) -> str:
    return (
        f'<span class="sizes">n reference {verdict.reference_n:,} · current {verdict.current_n:,}; missing '
        f"{_percent(verdict.reference_missing_share)} → {_percent(verdict.current_missing_share)}</span>"
    )


def _summary(header: Header, evaluation: Evaluation | None) -> list[str]:
    esc = html.escape
    out = [
        f"<h1>{esc(header.title)}</h1>",
        '<section class="summary">',
        f'<div>Verdict: <strong id="verdict" class="verdict-{esc(header.verdict)}">'
        f"{esc(header.verdict)}</strong></div>",
        f"<div>Samples: <strong>{header.samples}</strong></div>",
    ]
    if evaluation is not None:
        out.append(
            f"<div>Drifted features: <strong>{len(evaluation.drifted)} / "
            f"{len(evaluation.computable)}</strong>"
            f" ({_fmt(evaluation.drifted_share)}; dataset drift at ≥ {evaluation.drift_share:g})</div>"
        )
    out += [f"<div>Window: {esc(header.window)}</div>", f"<div>Reference: {esc(header.reference)}</div>", "</section>"]
    if header.message:
        out.append(f'<p class="message">{esc(header.message)}</p>')
    return out


def _plots(
    evaluation: Evaluation, reference: features.Reference, current: Mapping[str, features.CurrentFeature]
) -> list[str]:
    esc = html.escape
    out = [
        f'<p class="legend"><span style="background:{REFERENCE_COLOUR}"></span>reference'
        f'<span style="background:{CURRENT_COLOUR}"></span>current</p><section class="plots">'
    ]
    for verdict in evaluation.features:
        plot = feature_plot(verdict.name, reference.features[verdict.name], current[verdict.name])
        mark = " (drifted)" if verdict.drifted else ""
        out.append(
            f'<figure data-feature="{esc(verdict.name)}">'
            f"<figcaption>{esc(verdict.name)}{mark}<br>{_sizes(verdict)}</figcaption>"
            f"{plot}</figure>"
        )
    out.append("</section>")
    return out


def render(
    header: Header,
    evaluation: Evaluation | None,
    reference: features.Reference | None = None,
    current: Mapping[str, features.CurrentFeature] | None = None,
    sections: Sequence[ReportSection] = (),
) -> str:
    """The whole report; without an evaluation (not enough data, schema mismatch) only the header."""
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(header.title)}</title><style>{STYLE}</style></head><body>",
        *_summary(header, evaluation),
    ]
    if evaluation is not None:
        out.append(_table(evaluation))
        if reference is not None and current is not None:
            out += _plots(evaluation, reference, current)
    for section in sections:
        out.append(f'<section id="{esc(section.id)}"><h2>{esc(section.title)}</h2>{section.body_html}</section>')
    out.append("</body></html>")
    return "\n".join(out)


def _drifted_cell(f: FeatureVerdict) -> str:
    if f.missing_drifted:
        return "yes (missing share)"
    return "yes" if f.drifted else "no"


def _table(evaluation: Evaluation) -> str:
    esc = html.escape
    rows = [
        '<table id="features"><thead><tr><th>Feature</th><th>Type</th><th>Test</th><th>Score</th>'
        "<th>Statistic</th><th>Threshold</th><th>Drifted</th><th>n reference</th><th>n current</th>"
        "<th>Missing reference</th><th>Missing current</th><th>Note</th></tr></thead><tbody>"
    ]
    for f in evaluation.features:
        kind = "p-value" if f.is_p_value else "distance"
        rows.append(
            f'<tr class="{"drifted" if f.drifted else "stable"}" data-feature="{esc(f.name)}">'
            f"<td>{esc(f.name)}</td><td>{f.kind}</td><td>{esc(f.test.value)} ({kind})</td>"
            f"<td>{_fmt(f.outcome.value)}</td><td>{_fmt(f.outcome.statistic)}</td><td>{_fmt(f.threshold)}</td>"
            f"<td>{_drifted_cell(f)}</td>"
            f'<td class="n-reference">{f.reference_n}</td><td class="n-current">{f.current_n}</td>'
            f'<td class="missing-reference">{_percent(f.reference_missing_share)}</td>'
            f'<td class="missing-current">{_percent(f.current_missing_share)}</td>'
            f"<td>{esc(f.outcome.note or '')}</td></tr>"
        )
    for name in evaluation.ignored:
        rows.append(f'<tr class="ignored"><td>{esc(name)}</td><td colspan="11">ignored by the monitor</td></tr>')
    rows.append("</tbody></table>")
    return "".join(rows)


# --- prediction drift and live quality sections --------------------------------------------------


def prediction_drift_section(result: PredictionDriftResult) -> ReportSection:
    """The predictions against the target's distribution in the profile."""
    esc = html.escape
    verdict = "drifted" if result.drifted else "not drifted"
    body = (
        f'<p class="prediction-drift">{esc(str(result.test))}: score {_fmt(result.score)} '
        f"(threshold {_fmt(result.threshold)}), <strong>{verdict}</strong>, {result.samples:,} predictions"
        f"{'; ' + esc(result.note) if result.note else ''}</p>"
    )
    return ReportSection("prediction-drift", "Prediction drift (against the target in the profile)", body)


def live_quality_section(
    current: LiveQualityResult, history: Sequence[QualityPoint], time: datetime
) -> ReportSection:
    """This check's live quality (every metric, the join's counts) and the history of the headline metric."""
    esc = html.escape
    metrics = "".join(
        f'<tr data-metric="{esc(k)}"><td>{esc(k)}</td><td>{_fmt(v)}</td></tr>'
        for k, v in sorted(current.metrics.items())
    )
    skipped = "".join(
        f'<tr class="skipped" data-metric="{esc(k)}"><td>{esc(k)}</td><td>not computed: {esc(v)}</td></tr>'
        for k, v in sorted(current.skipped.items())
    )
    counts = (
        f'<p class="join">{current.labelled:,} labelled of {current.predictions:,} predictions; '
        f"late labels {current.late:,}, unknown ids {current.unknown:,}, duplicate labels {current.duplicates:,}, "
        f"invalid {current.invalid:,}</p>"
    )
    note = f'<p class="message">{esc(current.note)}</p>' if current.note else ""
    points = [*history, QualityPoint(time=time, value=current.value, labelled=current.labelled)]
    body = (
        f"{counts}{note}<table id=\"live-metrics\"><thead><tr><th>Metric</th><th>Value</th></tr></thead>"
        f"<tbody>{metrics}{skipped}</tbody></table>{_history(current.metric, points)}"
    )
    return ReportSection("live-quality", f"Live quality ({esc(current.metric)})", body)


def shadow_quality_section(shadow: ShadowLiveQuality) -> ReportSection:
    """A Shadow rollout's candidate against the champion on the same labelled rows: every metric of
    both, the headline one marked, and the rows they were scored on."""
    esc = html.escape
    champion = f"champion {shadow.champion_version}" if shadow.champion_version else "champion"
    names = sorted({*shadow.metrics, *shadow.champion_metrics})
    rows = "".join(
        f'<tr data-metric="{esc(k)}"{" class=headline" if k == shadow.metric else ""}><td>{esc(k)}</td>'
        f'<td class="champion">{_fmt(shadow.champion_metrics.get(k))}</td>'
        f'<td class="candidate">{_fmt(shadow.metrics.get(k))}</td>'
        f'<td class="difference">{_difference(shadow.metrics.get(k), shadow.champion_metrics.get(k))}</td></tr>'
        for k in names
    )
    counts = (
        f'<p class="shadow-join">{shadow.labelled:,} labelled of {shadow.predictions:,} recorded rows of '
        f"candidate {esc(shadow.version)}; {esc(shadow.metric)}: {esc(champion)} {_fmt(shadow.champion_value)}, "
        f"candidate {_fmt(shadow.value)}</p>"
    )
    note = f'<p class="message">{esc(shadow.message)}</p>' if shadow.message else ""
    table = (
        f'<table id="shadow-metrics"><thead><tr><th>Metric</th><th>{esc(champion)}</th>'
        f"<th>candidate {esc(shadow.version)}</th><th>candidate - champion</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        if rows
        else ""
    )
    return ReportSection(
        "shadow-quality", "Shadow candidate against the champion, on the same labelled rows", counts + note + table
    )


def _difference(candidate: float | None, champion: float | None) -> str:
    if candidate is None or champion is None:
        return "—"
    return f"{candidate - champion:+.4f}"


def _history(metric: str, points: Sequence[QualityPoint]) -> str:
    """A table of the checks that had labels, and a line of the metric over them."""
    shown = [p for p in points if p.value is not None and p.labelled > 0]
    if not shown:
        return '<p class="empty">no check has had labelled predictions yet</p>'
    rows = "".join(
        f"<tr><td>{p.time.isoformat()}</td><td>{_fmt(p.value)}</td><td>{p.labelled:,}</td></tr>" for p in shown
    )
    table = (
        f'<table id="quality-history"><thead><tr><th>Check</th><th>{html.escape(metric)}</th>'
        f"<th>Labelled</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    return table + _line([float(p.value) for p in shown if p.value is not None], metric)


def _line(values: Sequence[float], metric: str) -> str:
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (PLOT_WIDTH - LEFT - RIGHT) / (len(values) - 1)
    xy = " ".join(
        f"{LEFT + i * step:.1f},{PLOT_HEIGHT - (v - low) / span * (PLOT_HEIGHT - 10):.1f}" for i, v in enumerate(values)
    )
    return (
        _svg_open(PLOT_WIDTH, PLOT_HEIGHT + 16, f"{metric} over the checks")
        + f'<polyline class="quality-line" points="{xy}" fill="none" stroke="{CURRENT_COLOUR}" stroke-width="2"/>'
        + _axes(PLOT_WIDTH, high)[0]
        + f'<text x="2" y="12" font-size="10">{high:.3g}</text>'
        + f'<text x="2" y="{PLOT_HEIGHT}" font-size="10">{low:.3g}</text></svg>'
    )


__all__ = [
    "Header",
    "ReportSection",
    "categorical_plot",
    "category_bars",
    "feature_plot",
    "histogram",
    "live_quality_section",
    "numeric_plot",
    "prediction_drift_section",
    "render",
    "shadow_quality_section",
]
