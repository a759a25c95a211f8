"""Category labels and counts on a common set of categories, for both sides of a check alike.

Labels are canonicalised the same way on both sides. The reference's labels come from the profile
(pandas: `str(1.0)` is "1.0", `str(True)` is "True") and the current ones from the collected Parquet
files (Arrow's cast to string: "1", "true", "1e+15"), so one value would otherwise be two categories,
each seen on one side only, and equal distributions would drift with p near 0. `canonical_label`
rewrites:

- "True"/"False" (any case) to "true"/"false";
- a decimal or exponent number text ("1.0", "-0.0", "1e+15", "0.00001") to the text of its float64:
  integral values as plain integers ("1", "0", "1000000000000000"), others as Python's shortest repr
  ("1e-05");
- nothing else: integer texts stay as they are (no float round trip for long IDs), and texts with
  leading zeros ("007", "01.5") are codes, not numbers.

The fold of rare categories (`align`, when the profile kept only its most frequent categories and put
the rest under OTHER_CATEGORY) keeps a category only when its combined count, reference plus current,
is high enough that no folded category could reach it; every other category goes to OTHER_CATEGORY
on both sides. Choosing by combined counts does not bias a test of equal distributions: under no drift
the split of a category's total between the sides does not depend on the total. Choosing by the
reference's own counts (what the profile did) keeps the categories the reference over-sampled, and a
chi-squared test then flags two identical distributions every time.

No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

import numpy as np

from mlops_operator.api.profile import OTHER_CATEGORY
from mlops_operator.drift.stats import IntArray

# A decimal number with a fraction or an exponent, without leading zeros (those are codes, not numbers).
_NUMBER_TEXT: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?")
_BOOLEANS: Final = {"true": "true", "false": "false"}


def canonical_label(label: str) -> str:
    """The label both sides use for one category value (see the module docstring)."""
    lowered = label.lower()
    if lowered in _BOOLEANS:
        return _BOOLEANS[lowered]
    if label == "-0":  # Arrow's text of the float -0.0
        return "0"
    if ("." not in label and "e" not in lowered) or _NUMBER_TEXT.fullmatch(label) is None:
        return label
    value = float(label)
    return str(int(value)) if value.is_integer() else repr(value)


def canonical_counts(items: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Counts by canonical label; labels that canonicalise alike ("1", "1.0") add up. Order is kept."""
    counts: dict[str, int] = {}
    for label, count in items:
        key = label if label == OTHER_CATEGORY else canonical_label(str(label))
        counts[key] = counts.get(key, 0) + int(count)
    return counts


def align(
    reference: Mapping[str, int], current: Mapping[str, int], folded: bool
) -> tuple[list[str], IntArray, IntArray]:
    """Reference and current counts over common categories; both mappings hold canonical labels.

    Unfolded (the profile kept every category): the union of categories, reference order first, a
    category seen on one side only being a zero cell on the other.

    Folded (the reference holds its most frequent categories and OTHER_CATEGORY): every category the
    reference folded has a reference count of at most `m`, the smallest count it kept, so a category
    absent from the reference totals at most m + u, u being the largest current count of such a
    category. Keeping exactly the reference categories whose total exceeds m + u is therefore a rule on
    totals alone; everything else, on both sides, goes to OTHER_CATEGORY (last).
    """
    if not folded:
        labels = list(reference)
        labels += [label for label in current if label not in reference]
        ref = np.fromiter((reference.get(label, 0) for label in labels), dtype=np.int64, count=len(labels))
        cur = np.fromiter((current.get(label, 0) for label in labels), dtype=np.int64, count=len(labels))
        return labels, ref, cur
    known = {label: count for label, count in reference.items() if label != OTHER_CATEGORY}
    smallest_kept = min(known.values(), default=0)
    largest_unknown = max((count for label, count in current.items() if label not in known), default=0)
    bar = smallest_kept + largest_unknown
    kept = [label for label, count in known.items() if count + current.get(label, 0) > bar]
    ref_kept = np.fromiter((known[label] for label in kept), dtype=np.int64, count=len(kept))
    cur_kept = np.fromiter((current.get(label, 0) for label in kept), dtype=np.int64, count=len(kept))
    ref_total = sum(reference.values())
    cur_total = sum(current.values())
    ref = np.append(ref_kept, ref_total - int(ref_kept.sum()))
    cur = np.append(cur_kept, cur_total - int(cur_kept.sum()))
    return [*kept, OTHER_CATEGORY], ref, cur


__all__ = ["align", "canonical_counts", "canonical_label"]
