"""The HTML report names every category on its axis, gives n and missing shares, marks quantiles."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from mlops_operator.drift import features, report, select
from mlops_operator.drift.select import CurrentCategorical, DriftCheckSettings
from tests.unit.drift.profiles import in_memory_reference

LONG = "a category with a very long name <b>"
HEADER = report.Header(title="check", verdict="NoDrift", samples=400, window="w", reference="r")


def _page(sections: tuple[report.ReportSection, ...] = ()) -> str:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=500), "colour": rng.choice(["red", "green", LONG], 500)})
    frame.loc[:49, "x"] = np.nan
    reference = in_memory_reference(frame, {"colour"})
    x = rng.normal(size=400)
    x[:100] = np.nan
    colour = pd.Series(rng.choice(["red", "green", LONG, "teal"], 380)).value_counts()
    current: dict[str, select.CurrentFeature] = {
        "x": features.current_numeric(x),
        "colour": CurrentCategorical({str(k): int(v) for k, v in colour.items()}, missing=20),
    }
    evaluation = select.evaluate(reference, current, DriftCheckSettings())
    return report.render(HEADER, evaluation, reference, current, sections)


def _axis_labels(page: str) -> list[str]:
    return re.findall(r'<text class="axis-label"[^>]*><title>([^<]*)</title>', page)


def test_every_category_is_named_on_its_axis() -> None:
    page = _page()
    assert sorted(_axis_labels(page)) == sorted(["red", "green", "teal", "a category with a very long name &lt;b&gt;"])
    assert "a category wi…</text>" in page  # cut on the axis, whole in the tooltip
    assert "<b>" not in page


def test_n_and_missing_shares_per_feature() -> None:
    page = _page()
    assert '<td class="n-reference">450</td><td class="n-current">300</td>' in page
    assert '<td class="missing-reference">10.0%</td><td class="missing-current">25.0%</td>' in page
    assert '<td class="n-reference">500</td><td class="n-current">380</td>' in page
    assert '<td class="missing-reference">0.0%</td><td class="missing-current">5.0%</td>' in page
    assert "yes (missing share)" in page  # x: 10 % → 25 % missing
    assert page.count('<span class="sizes">') == 2


def test_numeric_plots_mark_the_reference_quantiles() -> None:
    page = _page()
    assert page.count('class="quantile-tick"') == len(report.QUANTILE_TICKS)
    assert "<title>reference 50% quantile</title>" in page


def test_extra_sections_come_after_the_plots() -> None:
    section = report.ReportSection(id="live-quality", title="Live quality", body_html="<p>history</p>")
    page = _page((section,))
    assert '<section id="live-quality"><h2>Live quality</h2><p>history</p></section>' in page
    assert page.index('id="live-quality"') > page.index('class="plots"')
    assert 'id="live-quality"' not in _page()
