"""The schema and quality rules of a Dataset, applied to what `profile` read.

apply_schema: the target and declared features exist, declared types fit (a feature declared
categorical becomes text). The rules run in this order: missing values, rows without a target,
duplicates, outliers, minimum rows. A failed rule raises QualityCheckFailed (a DataError) carrying every
finding so far; a rule that only warns or drops rows adds a finding.

A source of many files is cleaned in two steps (workloads/parts.py): `clean_part` per file (the schema,
each column's missing count, rows without a target dropped), then the rules that need every row
(`check_missing` on the summed counts, duplicates, outliers, minimum rows). `prepare` does all of it on
one frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlops_operator.api.v1alpha1.dataset import (
    DatasetSpec,
    DuplicatePolicy,
    FeatureType,
    OutlierAction,
    OutlierMethod,
    QualityFinding,
    Severity,
)
from mlops_operator.workloads import data
from mlops_operator.workloads.common import DataError


class QualityCheckFailed(DataError):
    """A quality rule failed; the findings travel with the error into the result."""

    def __init__(self, findings: list[QualityFinding]) -> None:
        errors = [f for f in findings if f.severity == Severity.ERROR]
        super().__init__("QualityCheckFailed", "; ".join(f.message for f in errors[:5]))
        self.findings = findings


@dataclass
class Prepared:
    """The cleaned frame and what cleaning it found."""

    frame: pd.DataFrame
    findings: list[QualityFinding] = field(default_factory=list)


@dataclass
class PartCleaning:
    """One file after the per-file rules: what the whole-table rules need from it."""

    frame: pd.DataFrame  # the schema applied, rows without a target dropped
    rows_read: int
    missing: dict[str, int]  # per column, before rows without a target were dropped
    missing_target: int


def clean_part(frame: pd.DataFrame, spec: DatasetSpec) -> PartCleaning:
    """The schema, each column's missing count, then rows without a target dropped."""
    frame = apply_schema(frame, spec)
    missing = {str(c): int(n) for c, n in frame.isna().sum().items()}
    target = spec.schema_.target
    dropped = 0
    if target is not None:
        absent = frame[target].isna()
        dropped = int(absent.sum())
        if dropped:
            frame = frame[~absent].reset_index(drop=True)
    return PartCleaning(frame, len(frame) + dropped, missing, dropped)


def prepare(frame: pd.DataFrame, spec: DatasetSpec) -> Prepared:
    """Apply the schema, then the quality rules in order: missing, target, duplicates, outliers, rows."""
    part = clean_part(frame, spec)
    check_missing(part.missing, part.rows_read, spec.quality.max_missing_fraction)
    prepared = Prepared(part.frame, missing_target_findings(part.missing_target, spec.schema_.target))
    return clean_whole(prepared, spec)


def clean_whole(prepared: Prepared, spec: DatasetSpec) -> Prepared:
    """The rules that need every row at once: duplicates, outliers, minimum rows."""
    rules = spec.quality
    target = spec.schema_.target
    rows = len(prepared.frame)
    _handle_duplicates(prepared, DuplicatePolicy(rules.duplicates))
    if rules.outliers.method != OutlierMethod.NONE:
        _handle_outliers(
            prepared,
            OutlierMethod(rules.outliers.method),
            rules.outliers.threshold,
            OutlierAction(rules.outliers.action),
            exclude={target} if target else set(),
        )
    check_min_rows(len(prepared.frame), rules.min_rows)
    if len(prepared.frame) != rows:  # rows were dropped: renumber (a copy, so only then)
        prepared.frame = prepared.frame.reset_index(drop=True)
    return prepared


def check_min_rows(rows: int, min_rows: int) -> None:
    if rows < min_rows:
        raise DataError("InsufficientData", f"{rows} rows after cleaning, fewer than quality.minRows={min_rows}")


def needs_whole_table(spec: DatasetSpec, duplicates: int) -> bool:
    """Whether the rules need every row in one frame (not only the files' summaries): outlier rules
    compare each value with quartiles or moments of the whole table, and dropping duplicates removes
    rows across files."""
    rules = spec.quality
    dropping = rules.duplicates == DuplicatePolicy.DROP and duplicates > 0
    return rules.outliers.method != OutlierMethod.NONE or dropping


def apply_schema(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    schema = spec.schema_
    columns = [str(c) for c in frame.columns]
    if schema.target is not None and schema.target not in frame.columns:
        raise DataError(
            "MissingTarget",
            f"target column {schema.target!r} is not in the data; columns: {_listing(columns)}",
        )
    if schema.features is None:
        return frame
    missing = [f.name for f in schema.features if f.name not in frame.columns]
    if missing:
        raise DataError(
            "SchemaMismatch",
            f"declared features missing from the data: {_listing(missing)}; columns: {_listing(columns)}",
        )
    kept = [f.name for f in schema.features if f.name != schema.target]
    out = frame[kept + ([schema.target] if schema.target else [])].copy()
    for feature in schema.features:
        out[feature.name] = _coerce(out[feature.name], FeatureType(feature.type))
    return out


def _coerce(series: pd.Series[Any], declared: FeatureType) -> pd.Series[Any]:
    if declared == FeatureType.CATEGORICAL:
        return data.as_categorical(series)
    if data.feature_kind(series) == FeatureType.NUMERIC:
        return series
    numbers = pd.to_numeric(series, errors="coerce")
    bad = series.notna() & numbers.isna()
    if bad.any():
        example = series[bad].iloc[0]
        raise DataError(
            "SchemaMismatch",
            f"column {series.name!r} is declared numeric but {int(bad.sum())} values are not numbers, "
            f"e.g. {str(example)[:40]!r}",
        )
    return numbers.astype(np.float64)


def _listing(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" … ({len(names)} in all)" if len(names) > limit else "")


def check_missing(missing: Mapping[str, int], rows: int, max_fraction: float) -> None:
    """maxMissingFraction on per-column missing counts out of `rows`."""
    failed = []
    for column, count in missing.items():
        fraction = count / rows if rows else 0.0
        if fraction > max_fraction:
            failed.append(
                QualityFinding(
                    rule="maxMissingFraction",
                    severity=Severity.ERROR,
                    feature=str(column),
                    count=int(count),
                    message=f"column {column!r} is {fraction:.1%} missing, more than {max_fraction:.1%}",
                )
            )
    if failed:
        raise QualityCheckFailed(failed)


def missing_target_findings(count: int, target: str | None) -> list[QualityFinding]:
    if not count or target is None:
        return []
    return [
        QualityFinding(
            rule="missingTarget", severity=Severity.WARNING, feature=target, count=count,
            message=f"dropped {count} rows without a target value",
        )
    ]


def duplicate_findings(count: int, policy: DuplicatePolicy, findings: list[QualityFinding]) -> list[QualityFinding]:
    """The duplicates rule on a count of duplicate rows (the rows are not dropped here)."""
    if count == 0:
        return []
    if policy == DuplicatePolicy.FAIL:
        finding = QualityFinding(
            rule="duplicates", severity=Severity.ERROR, count=count,
            message=f"{count} duplicate rows and quality.duplicates is fail",
        )
        raise QualityCheckFailed([*findings, finding])
    if policy == DuplicatePolicy.DROP:
        return [QualityFinding(rule="duplicates", severity=Severity.INFO, count=count,
                               message=f"dropped {count} duplicate rows")]
    return [QualityFinding(rule="duplicates", severity=Severity.WARNING, count=count,
                           message=f"{count} duplicate rows (kept)")]


def duplicated_rows(frame: pd.DataFrame) -> pd.Series[bool]:
    """frame.duplicated(), about 5x faster on wide frames: hash every row, then compare exactly only
    the rows whose hash repeats. (Rows differing only in NaN payloads or the sign of zero hash apart.)"""
    hashes = pd.util.hash_pandas_object(frame, index=False)
    candidates = hashes.duplicated(keep=False).to_numpy()
    duplicated = np.zeros(len(frame), dtype=bool)
    if candidates.any():
        duplicated[candidates] = frame[candidates].duplicated().to_numpy()
    return pd.Series(duplicated, index=frame.index, dtype=bool)


def _handle_duplicates(prepared: Prepared, policy: DuplicatePolicy) -> None:
    duplicated = duplicated_rows(prepared.frame)
    count = int(duplicated.sum())
    prepared.findings.extend(duplicate_findings(count, policy, prepared.findings))
    if count and policy == DuplicatePolicy.DROP:
        prepared.frame = prepared.frame[~duplicated]


def _handle_outliers(
    prepared: Prepared, method: OutlierMethod, threshold: float, action: OutlierAction, exclude: set[str]
) -> None:
    frame = prepared.frame
    any_outlier = np.zeros(len(frame), dtype=bool)
    for column in frame.columns:
        if column in exclude or data.feature_kind(frame[column]) != FeatureType.NUMERIC:
            continue
        values = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
        outliers = _outliers(values, method, threshold)
        count = int(outliers.sum())
        if count == 0:
            continue
        any_outlier |= outliers
        if action == OutlierAction.WARN:
            prepared.findings.append(
                QualityFinding(
                    rule=f"outliers.{method}", severity=Severity.WARNING, feature=str(column), count=count,
                    message=f"column {column!r} has {count} outliers by {method} (threshold {threshold:g})",
                )
            )
    dropped = int(any_outlier.sum())
    if action == OutlierAction.DROP and dropped:
        prepared.frame = frame[~any_outlier]
        prepared.findings.append(
            QualityFinding(
                rule=f"outliers.{method}", severity=Severity.INFO, count=dropped,
                message=f"dropped {dropped} rows with an outlier by {method} (threshold {threshold:g})",
            )
        )


def _outliers(values: npt.NDArray[np.float64], method: OutlierMethod, threshold: float) -> npt.NDArray[np.bool_]:
    present = values[np.isfinite(values)]
    if present.size < 2:
        return np.zeros(values.shape, dtype=bool)
    if method == OutlierMethod.IQR:
        q1, q3 = np.quantile(present, [0.25, 0.75])
        low, high = q1 - threshold * (q3 - q1), q3 + threshold * (q3 - q1)
    else:
        mean, std = float(present.mean()), float(present.std())
        if std == 0:
            return np.zeros(values.shape, dtype=bool)
        low, high = mean - threshold * std, mean + threshold * std
    with np.errstate(invalid="ignore"):
        outside: npt.NDArray[np.bool_] = (values < low) | (values > high)
    return outside


__all__ = [
    "PartCleaning",
    "Prepared",
    "QualityCheckFailed",
    "apply_schema",
    "check_min_rows",
    "check_missing",
    "clean_part",
    "clean_whole",
    "duplicate_findings",
    "duplicated_rows",
    "missing_target_findings",
    "needs_whole_table",
    "prepare",
]
