"""`mlops-operator drift --spec <DriftPlan JSON>`: one drift check of a model's collected inputs.

Reads the Dataset profile (the reference, cached locally per profile hash), reads only the collected
partitions (`date=YYYY-MM-DD/hour=HH/*.parquet`) that overlap the window, parses only the feature and
timestamp columns, keeps rows with window_start <= timestamp < window_end, and then:

- a feature column missing, unexpected, or of the wrong type → verdict SchemaMismatch (ok=true: a
  valid outcome, not drift, so the operator neither retrains nor retries);
- fewer rows than min_samples → verdict NotEnoughData (no verdict, no retrain);
- else per-feature scores (drift/select.py) and the verdict Drift or NoDrift.

When the plan asks for them, the same run scores the predictions' drift against the target's
distribution in the profile (workloads/prediction_drift.py) and the live quality of the quality
window's predictions with the labels that arrived (workloads/live_quality.py), and, when a Shadow
rollout's champion recorded the candidate's answers (plan.quality.shadow_prefix), the candidate and
the champion on the same labelled rows (quality.shadow); all go into the result and the report,
whatever the input verdict.

Every valid outcome writes report.html and then result.json (the full DriftResult) into
plan.output_dir, and prints a compact DriftResult (≤ 4 KiB, drifted features first) on stdout and to
the termination-message file. Bad input exits with a reserved code (workloads/common.py).
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlops_operator import contracts, store
from mlops_operator.api.plans import DriftPlan
from mlops_operator.api.results import DriftFeatureResult, DriftResult
from mlops_operator.drift import reference as reference_mod
from mlops_operator.drift import report, select, stats
from mlops_operator.drift.features import FeatureReference
from mlops_operator.drift.reference import NumericReference, Reference
from mlops_operator.drift.select import CurrentCategorical, CurrentFeature, CurrentNumeric, Evaluation
from mlops_operator.workloads import common, live_quality, prediction_drift, retention
from mlops_operator.workloads.collected import micros_since_epoch, partition_uris, utc

log = logging.getLogger("mlops_operator.workloads.drift")

RESULT_FILE: Final = "result.json"
REPORT_FILE: Final = "report.html"
COLLECTED_COLUMNS: Final = frozenset(
    {
        contracts.COLLECT_TIME_COLUMN,
        contracts.COLLECT_PREDICTION_COLUMN,
        contracts.COLLECT_MODEL_VERSION_COLUMN,
        contracts.COLLECT_ID_COLUMN,
        contracts.COLLECT_PROBABILITY_COLUMN,
    }
)
MAX_PROBLEMS: Final = 10


# --- reading the window ----------------------------------------------------------------------------


def window_files(plan: DriftPlan) -> list[str]:
    files: list[str] = []
    for partition in partition_uris(plan.collected_prefix, plan.window_start, plan.window_end):
        files += [uri for uri in store.list_prefix(partition) if uri.endswith(".parquet")]
    return files


def _type_fits(kind: Literal["numeric", "categorical"], arrow_type: pa.DataType) -> bool:
    if kind == "numeric":
        return bool(
            pa.types.is_integer(arrow_type)
            or pa.types.is_floating(arrow_type)
            or pa.types.is_boolean(arrow_type)
            or pa.types.is_decimal(arrow_type)
            or pa.types.is_null(arrow_type)
        )
    return not pa.types.is_nested(arrow_type)


def schema_problems(schema: pa.Schema, reference: Reference) -> list[str]:
    """What keeps this file from being compared with the reference, as sentences for the user."""
    names = set(schema.names)
    problems = [f"feature {name!r} is missing" for name in reference.features if name not in names]
    target = reference.profile.target
    extra = sorted(names - set(reference.features) - COLLECTED_COLUMNS - ({target} if target else set()))
    problems += [f"column {name!r} is not a feature of the reference" for name in extra]
    for name, feature in reference.features.items():
        if name in names:
            kind: Literal["numeric", "categorical"] = (
                "numeric" if isinstance(feature, NumericReference) else "categorical"
            )
            arrow_type = schema.field(name).type
            if not _type_fits(kind, arrow_type):
                problems.append(f"feature {name!r} is {kind} in the reference but {arrow_type} in the inputs")
    if contracts.COLLECT_TIME_COLUMN not in names:
        problems.append(f"the timestamp column {contracts.COLLECT_TIME_COLUMN!r} is missing")
    return problems


@dataclass
class Window:
    """The current side, accumulated file by file."""

    rows: int = 0
    files: int = 0
    numeric: dict[str, list[np.ndarray]] = field(default_factory=dict)
    categorical: dict[str, Counter[str]] = field(default_factory=dict)
    missing: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    predictions: list[pa.Array] = field(default_factory=list)  # the prediction column, when collected

    def add(self, table: pa.Table, reference: Reference) -> None:
        self.rows += table.num_rows
        if contracts.COLLECT_PREDICTION_COLUMN in table.column_names:
            self.predictions.append(table.column(contracts.COLLECT_PREDICTION_COLUMN).combine_chunks())
        for name, feature in reference.features.items():
            column = table.column(name)
            self.missing[name] += column.null_count
            if isinstance(feature, NumericReference):
                values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
                self.numeric.setdefault(name, []).append(np.asarray(values, dtype=np.float64))
            else:
                counts = pc.value_counts(pc.cast(column.drop_null(), pa.string()))
                tally = self.categorical.setdefault(name, Counter())
                for item in counts.to_pylist():
                    tally[str(item["values"])] += int(item["counts"])

    def current(self, reference: Reference) -> dict[str, CurrentFeature]:
        features: dict[str, CurrentFeature] = {}
        for name, feature in reference.features.items():
            if isinstance(feature, NumericReference):
                chunks = self.numeric.get(name, [])
                joined = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.float64)
                sorted_values = stats.finite_sorted(joined)
                features[name] = CurrentNumeric(sorted_values, missing=int(joined.size - sorted_values.size))
            else:
                features[name] = CurrentCategorical(self.categorical.get(name, Counter()), self.missing[name])
        return features


def read_window(plan: DriftPlan, reference: Reference) -> Window:
    window = Window()
    start_us = utc(plan.window_start).timestamp() * 1e6
    end_us = utc(plan.window_end).timestamp() * 1e6
    columns = [*reference.features, contracts.COLLECT_TIME_COLUMN]
    for uri in window_files(plan):
        # Whole part files (the collector flushes small ones); parsing happens outside the store's error
        # translation, so a torn file is a data error, not a store outage.
        data = store.read_bytes(uri)
        try:
            parquet = pq.ParquetFile(pa.BufferReader(data))
            problems = schema_problems(parquet.schema_arrow, reference)
            if problems:
                window.problems += [p for p in problems if p not in window.problems]
                continue
            prediction = contracts.COLLECT_PREDICTION_COLUMN
            table = parquet.read(columns=columns + [prediction] * (prediction in parquet.schema_arrow.names))
        except (pa.ArrowException, OSError) as exc:
            raise common.DataError("CorruptInput", f"cannot read {store.redact(uri)}: {exc}") from exc
        stamps = micros_since_epoch(table.column(contracts.COLLECT_TIME_COLUMN))
        window.add(table.filter(pa.array((stamps >= start_us) & (stamps < end_us))), reference)
        window.files += 1
    return window


# --- the check -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outputs:
    result_uri: str
    report_uri: str

    @classmethod
    def under(cls, output_dir: str) -> Outputs:
        return cls(store.join(output_dir, RESULT_FILE), store.join(output_dir, REPORT_FILE))


def to_scores(evaluation: Evaluation) -> list[DriftFeatureResult]:
    return [
        DriftFeatureResult(name=f.name, test=f.test, score=f.outcome.value, threshold=f.threshold, drifted=f.drifted)
        for f in evaluation.features
    ]


def check(plan: DriftPlan, cache_dir: Path | None = None) -> DriftResult:
    try:
        reference = reference_mod.load(plan.profile_uri, cache_dir)
    except reference_mod.ReferenceDataError as exc:
        raise common.DataError("InvalidReference", str(exc)) from exc
    window = read_window(plan, reference)
    result, evaluation, current = _input_drift(plan, reference, window)
    target = _target(plan, reference, cache_dir)
    result.prediction_drift = prediction_drift.prediction_drift(plan, target, window.predictions)
    if plan.quality is not None:
        classes = prediction_drift.classes_of(target)
        result.quality = live_quality.assess(plan.quality, plan.collected_prefix, plan.window_end, classes)
    outputs = Outputs.under(plan.output_dir)
    result.report_uri, result.result_uri = outputs.report_uri, outputs.result_uri
    html = report.render(
        _header(plan, reference, window, result), evaluation, reference, current, sections=_sections(plan, result)
    )
    store.write_bytes_atomic(outputs.report_uri, html.encode())
    store.write_json_atomic(outputs.result_uri, result.dump())  # written last: its presence commits the check
    log.info("drift check %s/%s: %s over %d rows", plan.namespace, plan.monitor, result.verdict, window.rows)
    return result


def _target(plan: DriftPlan, reference: Reference, cache_dir: Path | None) -> FeatureReference | None:
    if plan.prediction_drift is None and plan.quality is None:
        return None
    return prediction_drift.target_of(plan, reference, cache_dir)


def _input_drift(
    plan: DriftPlan, reference: Reference, window: Window
) -> tuple[DriftResult, Evaluation | None, dict[str, CurrentFeature] | None]:
    """The verdict on the inputs: SchemaMismatch, NotEnoughData, or the features' scores."""
    if window.problems:
        shown = window.problems[:MAX_PROBLEMS]
        more = f" (and {len(window.problems) - len(shown)} more)" if len(window.problems) > len(shown) else ""
        message = "; ".join(shown) + more
        return (
            DriftResult(
                ok=True, verdict="SchemaMismatch", samples=window.rows, reason="SchemaMismatch", message=message
            ),
            None,
            None,
        )
    if window.rows < plan.min_samples:
        message = (
            f"{window.rows} rows in the window from {window.files} files, fewer than minSamples={plan.min_samples}"
        )
        return (
            DriftResult(ok=True, verdict="NotEnoughData", samples=window.rows, reason="NotEnoughData", message=message),
            None,
            None,
        )
    current = window.current(reference)
    try:
        evaluation = select.evaluate(reference, current, select.DriftCheckSettings.from_plan(plan))
    except select.SelectionError as exc:
        raise common.SpecError("InvalidTest", str(exc)) from exc
    return _verdict(evaluation, window.rows), evaluation, current


def _header(plan: DriftPlan, reference: Reference, window: Window, result: DriftResult) -> report.Header:
    baseline = f"{reference.profile.dataset} version {reference.profile.version[:12]} ({reference.rows} rows)"
    return report.Header(
        title=f"Drift check: {plan.namespace}/{plan.monitor} (model {plan.model})",
        verdict=result.verdict,
        samples=window.rows,
        window=f"{utc(plan.window_start).isoformat()} to {utc(plan.window_end).isoformat()}",
        reference=f"{baseline}; {plan.baseline_note}" if plan.baseline_note else baseline,
        message=result.message or "",
    )


def _sections(plan: DriftPlan, result: DriftResult) -> list[report.ReportSection]:
    sections = []
    if result.prediction_drift is not None:
        sections.append(report.prediction_drift_section(result.prediction_drift))
    if result.quality is not None and plan.quality is not None:
        sections.append(report.live_quality_section(result.quality, plan.quality.history, plan.window_end))
        if result.quality.shadow is not None:
            sections.append(report.shadow_quality_section(result.quality.shadow))
    return sections


def _verdict(evaluation: Evaluation, rows: int) -> DriftResult:
    share = evaluation.drifted_share
    scores = to_scores(evaluation)
    if share is None:
        return DriftResult(
            ok=True,
            verdict="NotEnoughData",
            samples=rows,
            scores=scores,
            reason="NotEnoughData",
            message="no feature has a computable statistic (every value missing?)",
        )
    drifted = evaluation.drifted
    verdict: Literal["Drift", "NoDrift"] = "Drift" if evaluation.dataset_drift else "NoDrift"
    return DriftResult(
        ok=True,
        verdict=verdict,
        samples=rows,
        drifted_share=share,
        drifted_features=drifted,
        scores=scores,
        message=f"{len(drifted)} of {len(evaluation.computable)} features drifted "
        f"(share {share:.3f}, dataset drift at >= {evaluation.drift_share:g})",
    )


def compact(result: DriftResult, limit: int = contracts.TERMINATION_MESSAGE_LIMIT) -> DriftResult:
    """The result trimmed for the termination message: drifted scores first, the rest while they fit.

    drifted_features and the verdict always stay (common.encode_result shortens them only if the
    names alone exceed the limit); result.json keeps every score. A shadowed candidate's per-metric
    values (both models') go only when the result does not fit even without scores; its headline
    values and counts stay.
    """
    small = result.model_copy(deep=True)
    shadow = small.quality.shadow if small.quality is not None else None
    bare = small.model_copy(update={"scores": []})
    if shadow is not None and len(common.encode_result(bare, limit=1 << 30)) > limit - 128:
        # not even without scores: the shadow's headline values and counts stay, every metric of both
        # models is in result.json
        shadow.metrics, shadow.champion_metrics = {}, {}
    small.scores = sorted(small.scores, key=lambda s: not s.drifted)
    total = len(small.scores)
    while small.scores and len(common.encode_result(small, limit=1 << 30)) > limit - 64:
        small.scores.pop()
    if len(small.scores) < total:
        note = f"scores trimmed to {len(small.scores)} of {total}; all in result.json"
        small.message = f"{small.message}; {note}" if small.message else note
    return small


def failure(error: common.WorkloadError) -> DriftResult:
    return DriftResult(ok=False, verdict="Failed", reason=error.reason, error=error.message)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = common.plan_parser("drift", __doc__, DriftPlan)
    parser.add_argument("--cache-dir", type=Path, default=None, help="local cache of reference samples")
    return parser.parse_args(list(argv))


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    return common.run_plan(
        "drift", args, DriftPlan, lambda plan: compact(check_and_prune(plan, args.cache_dir)), failure
    )


def check_and_prune(plan: DriftPlan, cache_dir: Path | None) -> DriftResult:
    """The check, then the retention the plan asks for; a failed prune is logged and retried next time."""
    result = check(plan, cache_dir)
    if plan.retention is not None:
        try:
            pruned = retention.enforce(plan.retention, plan.window_end, plan.output_dir)
        except store.StoreError as exc:
            log.warning("retention skipped this time: %s", exc)
        else:
            result.pruned_objects, result.pruned_bytes = pruned.objects, pruned.bytes
    return result


__all__ = ["check", "compact", "main", "partition_uris", "read_window", "schema_problems"]
