"""`mlops-operator profile` run for real on scikit-learn's bundled datasets, CSV/Parquet files, bad input."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from mlops_operator import contracts, store
from mlops_operator.api.profile import REFERENCE_SAMPLE_MAX, DatasetProfile
from mlops_operator.api.results import ProfileResult
from mlops_operator.builders import jobs
from mlops_operator.settings import Settings
from mlops_operator.workloads import data, profile, quality
from mlops_operator.workloads.common import encode_result
from tests.unit import factories

from .conftest import profile_plan, run_cli, run_main, run_profile, synthetic_frame

ExitCode = contracts.ExitCode


def _load_profile(result: ProfileResult | dict[str, Any]) -> DatasetProfile:
    uri = result.profile_uri if isinstance(result, ProfileResult) else result["profileUri"]
    assert uri is not None
    return DatasetProfile.model_validate(store.read_json(uri))


def _reference(profile_: DatasetProfile) -> dict[str, np.ndarray[Any, Any]]:
    with np.load(io.BytesIO(store.read_bytes(profile_.reference_uri)), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def _csv(tmp_path: Path, frame: pd.DataFrame, name: str = "data.csv") -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path.as_uri()


# --- real datasets -------------------------------------------------------------------------------
def test_breast_cancer_through_the_console_script(store_root: str, termination_log: Path) -> None:
    plan = profile_plan(store_root, "sklearn://breast_cancer")
    run = run_cli("profile", ["--spec", plan.model_dump_json(by_alias=True)], termination_log)

    assert run.exit_code == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert json.loads(run.termination_message) == run.result
    assert len(run.termination_message) <= contracts.TERMINATION_MESSAGE_LIMIT
    result = ProfileResult.model_validate(run.result)
    assert result.ok and result.rows == 569 and result.columns == 31
    assert result.target == "target" and result.task_hint == "classification"
    version_dir = contracts.dataset_version_dir(store_root, "ns", "ds", result.version or "")
    assert result.data_uri == store.join(version_dir, "data.parquet")

    profile_ = _load_profile(result)
    truth = load_breast_cancer(as_frame=True).frame
    radius = profile_.feature("mean radius")
    assert radius is not None and radius.numeric is not None and radius.type == "numeric"
    assert radius.count == 569 and radius.missing == 0
    assert radius.numeric.mean == pytest.approx(truth["mean radius"].mean())
    assert radius.numeric.quantiles["0.5"] == pytest.approx(truth["mean radius"].median())
    assert sum(radius.numeric.histogram_counts) == 569
    assert len(radius.numeric.histogram_edges) == len(radius.numeric.histogram_counts) + 1

    reference = _reference(profile_)
    assert set(reference) == {f.name for f in profile_.features if f.type == "numeric"}
    np.testing.assert_array_equal(reference["mean radius"], np.sort(truth["mean radius"].to_numpy()))
    snapshot = pd.read_parquet(result.data_uri or "")  # a directory of parts, as any Parquet reader reads it
    pd.testing.assert_frame_equal(snapshot, truth, check_dtype=False)


def test_wine_is_multiclass_and_diabetes_is_regression(profiled_store: Any) -> None:
    wine, diabetes = profiled_store("wine"), profiled_store("diabetes")
    assert (wine.rows, wine.columns, wine.task_hint) == (178, 14, "classification")
    assert (diabetes.rows, diabetes.columns, diabetes.task_hint) == (442, 11, "regression")
    wine_target = _load_profile(wine).feature("target")
    assert wine_target is not None and wine_target.numeric is not None
    assert (wine_target.numeric.min, wine_target.numeric.max) == (0, 2)


def test_the_job_the_builder_renders_runs_as_is(store_root: str, termination_log: Path) -> None:
    dataset = factories.dataset()
    job = jobs.profile_job(dataset, Settings(store_uri=store_root, store_claim=""), tick=0)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    run = run_cli(container["args"][0], container["args"][1:], termination_log)
    assert run.exit_code == 0, run.stderr
    version_dir = contracts.dataset_version_dir(store_root, dataset.namespace, dataset.name, run.result["version"])
    assert run.result["profileUri"] == store.join(version_dir, "profile.json")


def test_csv_with_text_columns_and_gaps(tmp_path: Path, store_root: str, termination_log: Path) -> None:
    frame = synthetic_frame(2000, seed=3)
    run = run_profile(profile_plan(store_root, _csv(tmp_path, frame)), termination_log)
    assert run.exit_code == 0, run.result
    profile_ = _load_profile(run.result)
    color = profile_.feature("c0")
    assert color is not None and color.type == "categorical" and color.categorical is not None
    assert color.categorical.categories == frame["c0"].value_counts().to_dict()
    assert color.categorical.distinct == 4
    x1 = profile_.feature("x1")
    assert x1 is not None and x1.missing == int(frame["x1"].isna().sum()) > 0
    assert _reference(profile_)["x1"].size == x1.count  # NaNs never enter the reference
    assert run.result["taskHint"] == "classification"  # a text target


def test_parquet_source_and_declared_schema(tmp_path: Path, store_root: str, termination_log: Path) -> None:
    frame = synthetic_frame(500, seed=4)
    frame["zip"] = np.random.default_rng(0).integers(10000, 10010, size=len(frame))
    path = tmp_path / "data.bin"  # no extension: the format is sniffed from the Parquet magic
    frame.to_parquet(path)
    features = [{"name": "x0", "type": "numeric"}, {"name": "zip", "type": "categorical"},
                {"name": "c0", "type": "categorical"}]
    plan = profile_plan(store_root, path.as_uri(), schema={"target": "target", "features": features})
    run = run_profile(plan, termination_log)
    assert run.exit_code == 0, run.result
    profile_ = _load_profile(run.result)
    assert [f.name for f in profile_.features] == ["x0", "zip", "c0", "target"]
    zip_code = profile_.feature("zip")
    assert zip_code is not None and zip_code.type == "categorical"
    snapshot = data.read_snapshot(run.result["dataUri"])
    assert list(snapshot.columns) == ["x0", "zip", "c0", "target"]


def test_large_reference_is_a_seeded_capped_sample(tmp_path: Path, store_root: str) -> None:
    rows = REFERENCE_SAMPLE_MAX + 50_000
    path = tmp_path / "long.parquet"
    synthetic_frame(rows, seed=7, numeric=2, categorical=0).to_parquet(path)
    result = profile.profile(profile_plan(store_root, path.as_uri()))
    profile_ = _load_profile(result)
    sample = _reference(profile_)["x0"]
    assert sample.size == REFERENCE_SAMPLE_MAX == profile_.feature("x0").numeric.reference_size  # type: ignore[union-attr]
    assert sample.dtype == np.float64 and bool(np.all(np.diff(sample) >= 0))
    again = profile.profile(profile_plan(store_root, path.as_uri(), quality={"minRows": 2}))
    assert again.version != result.version  # other rules, another version
    np.testing.assert_array_equal(_reference(_load_profile(again))["x0"], sample)  # seeded by the file's bytes


# --- determinism and idempotence -----------------------------------------------------------------
def test_same_bytes_same_version_and_reruns_change_nothing(tmp_path: Path, store_root: str) -> None:
    frame = synthetic_frame(300, seed=5)
    first_uri, second_uri = _csv(tmp_path, frame, "a.csv"), _csv(tmp_path, frame, "b.csv")
    first = profile.profile(profile_plan(store_root, first_uri))
    part_file = Path(store.filesystem(first.data_uri or "")[1]) / "part-00000.parquet"
    written = part_file.stat()
    again = profile.profile(profile_plan(store_root, second_uri))
    unlisted = {"listing_fingerprint": None}
    assert again.model_copy(update=unlisted) == first.model_copy(update=unlisted)
    assert again.listing_fingerprint != first.listing_fingerprint  # another file was listed
    assert part_file.stat().st_mtime_ns == written.st_mtime_ns  # the complete version was not rewritten

    stricter = profile.profile(profile_plan(store_root, first_uri, quality={"duplicates": "drop"}))
    assert stricter.version != first.version  # same bytes, other rules: another version
    assert (part_file.stat().st_ino, part_file.stat().st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    assert stricter.lineage is not None and stricter.lineage.parent is None  # the plan named no current version

    changed = frame.copy()
    changed["x0"] = changed["x0"] + np.eye(1, len(changed)).ravel()  # one value moves
    changed_uri = _csv(tmp_path, changed, "c.csv")
    assert profile.profile(profile_plan(store_root, changed_uri)).version != first.version


def test_bundled_dataset_versions_are_stable(store_root: str) -> None:
    a = profile.profile(profile_plan(store_root, "sklearn://wine?rows=1000&seed=1"))
    b = profile.profile(profile_plan(store_root, "sklearn://wine?rows=1000&seed=1"))
    c = profile.profile(profile_plan(store_root, "sklearn://wine?rows=1000&seed=2"))
    assert a.version == b.version != c.version


def test_an_interrupted_version_is_recomputed(tmp_path: Path, store_root: str) -> None:
    uri = _csv(tmp_path, synthetic_frame(300, seed=6))
    first = profile.profile(profile_plan(store_root, uri))
    version_dir = contracts.dataset_version_dir(store_root, "ns", "ds", first.version or "")
    store.remove(store.join(version_dir, profile.COMPLETE_MARKER))  # as if killed before the marker
    store.remove(store.join(version_dir, "profile.json"))
    assert profile.profile(profile_plan(store_root, uri)) == first
    assert store.exists(store.join(version_dir, "profile.json"))


# --- quality rules --------------------------------------------------------------------------------
def test_duplicates_warn_drop_and_fail(tmp_path: Path, store_root: str, termination_log: Path) -> None:
    frame = synthetic_frame(200, seed=7)
    uri = _csv(tmp_path, pd.concat([frame, frame.iloc[:15]]))

    warned = profile.profile(profile_plan(store_root, uri))
    assert warned.rows == 215
    assert [(f.rule, f.severity, f.count) for f in warned.findings] == [("duplicates", "warning", 15)]

    dropped = profile.profile(profile_plan(store_root, uri, quality={"duplicates": "drop"}))
    assert dropped.rows == 200
    assert [(f.rule, f.severity, f.count) for f in dropped.findings] == [("duplicates", "info", 15)]

    run = run_profile(profile_plan(store_root, uri, quality={"duplicates": "fail"}), termination_log)
    assert (run.exit_code, run.result["reason"]) == (ExitCode.DATA_ERROR, "QualityCheckFailed")
    assert run.result["findings"][0]["rule"] == "duplicates" and "15 duplicate rows" in run.result["error"]


def test_fast_duplicate_detection_matches_pandas() -> None:
    frame = synthetic_frame(5000, seed=12, numeric=2, categorical=2).round(1)  # rounding makes repeats
    frame.loc[::7, "c1"] = np.nan
    expected = frame.duplicated()
    assert expected.sum() > 0
    pd.testing.assert_series_equal(quality.duplicated_rows(frame), expected)


def test_outliers_by_iqr_warn_and_zscore_drop(tmp_path: Path, store_root: str) -> None:
    frame = synthetic_frame(1000, seed=8)
    frame.loc[:4, "x2"] = 1e6
    uri = _csv(tmp_path, frame)
    warned = profile.profile(
        profile_plan(store_root, uri, quality={"outliers": {"method": "iqr", "threshold": 3.0}})
    )
    by_feature = {f.feature: f.count or 0 for f in warned.findings if f.rule == "outliers.iqr"}
    assert by_feature.get("x2", 0) >= 5 and warned.rows == 1000

    zscore_drop = {"outliers": {"method": "zscore", "threshold": 6, "action": "drop"}}
    dropped = profile.profile(profile_plan(store_root, uri, quality=zscore_drop))
    assert dropped.rows == 995
    assert any(f.rule == "outliers.zscore" and f.count == 5 for f in dropped.findings)


def test_rows_without_a_target_are_dropped_with_a_warning(tmp_path: Path, store_root: str) -> None:
    frame = synthetic_frame(300, seed=9)
    frame.loc[:9, "target"] = None
    result = profile.profile(profile_plan(store_root, _csv(tmp_path, frame)))
    assert result.rows == 290
    assert any(f.rule == "missingTarget" and f.count == 10 for f in result.findings)


def test_findings_are_trimmed_to_fit_the_termination_message(
    tmp_path: Path, store_root: str, termination_log: Path
) -> None:
    rng = np.random.default_rng(10)
    wide = pd.DataFrame({f"a_rather_long_feature_name_{i:03d}": rng.standard_cauchy(500) for i in range(120)})
    wide["target"] = rng.integers(0, 2, 500)
    plan = profile_plan(store_root, _csv(tmp_path, wide), quality={"outliers": {"method": "iqr"}})
    run = run_profile(plan, termination_log)
    assert run.exit_code == 0
    assert len(run.termination_message) <= contracts.TERMINATION_MESSAGE_LIMIT
    assert 0 < len(run.result["findings"]) <= 20
    assert len(_load_profile(run.result).findings) == 120  # all of them are kept in profile.json


def test_oversized_results_stay_valid_json() -> None:
    result = ProfileResult(ok=False, reason="MalformedData", error="é" * 20_000)
    encoded = encode_result(result)
    assert len(encoded) <= contracts.TERMINATION_MESSAGE_LIMIT
    assert ProfileResult.model_validate_json(encoded).reason == "MalformedData"


# --- bad input: one clear line, a reserved exit code, no traceback -----------------------------------
BAD_SOURCES: list[tuple[str, bytes | None, dict[str, Any], ExitCode, str, str]] = [
    ("missing file", None, {}, ExitCode.STORE_ERROR, "ObjectNotFound", "not found"),
    ("empty file", b"", {}, ExitCode.DATA_ERROR, "EmptyData", "empty"),
    ("header only", b"a,b,target\n", {}, ExitCode.DATA_ERROR, "EmptyData", "no rows"),
    ("ragged rows", b"a,b,target\n1,2,0\n3,4,5,6\n", {}, ExitCode.DATA_ERROR, "MalformedData", "line 3"),
    ("bad encoding", b"a,b,target\n1,\xff\xfe,0\n", {}, ExitCode.DATA_ERROR, "MalformedData", "UTF-8"),
    ("corrupt parquet", b"PAR1\x00\x01garbage", {}, ExitCode.DATA_ERROR, "MalformedData", "Parquet"),
    ("missing target", b"a,b\n1,2\n", {}, ExitCode.DATA_ERROR, "MissingTarget", "'target'"),
    (
        "wrong types",
        b"a,b,target\n1,x,0\n2,y,1\n",
        {"schema": {"target": "target", "features": [{"name": "b", "type": "numeric"}]}},
        ExitCode.DATA_ERROR, "SchemaMismatch", "declared numeric",
    ),
    (
        "declared feature absent",
        b"a,target\n1,0\n",
        {"schema": {"target": "target", "features": [{"name": "zz", "type": "numeric"}]}},
        ExitCode.DATA_ERROR, "SchemaMismatch", "'zz'",
    ),
    (
        "too many missing values",
        b"a,b,target\n1,,0\n2,,1\n3,,0\n4,5,1\n",
        {"quality": {"maxMissingFraction": 0.5, "minRows": 1}},
        ExitCode.DATA_ERROR, "QualityCheckFailed", "'b' is 75.0% missing",
    ),
    ("too few rows", b"a,target\n1,0\n2,1\n", {}, ExitCode.DATA_ERROR, "InsufficientData", "minRows=10"),
]


@pytest.mark.parametrize(
    ("content", "spec", "code", "reason", "fragment"),
    [row[1:] for row in BAD_SOURCES],
    ids=[row[0] for row in BAD_SOURCES],
)
def test_bad_sources(
    tmp_path: Path,
    store_root: str,
    termination_log: Path,
    content: bytes | None,
    spec: dict[str, Any],
    code: ExitCode,
    reason: str,
    fragment: str,
) -> None:
    path = tmp_path / ("data.parquet" if content and content.startswith(b"PAR1") else "data.csv")
    if content is not None:
        path.write_bytes(content)
    plan = profile_plan(store_root, path.as_uri(), **spec)
    run = run_profile(plan, termination_log)
    assert (run.exit_code, run.result["reason"], run.result["ok"]) == (code, reason, False)
    assert fragment in run.result["error"]
    written = store.list_prefix(store.join(store_root, "ns", "datasets"))
    assert not [uri for uri in written if uri.endswith("/complete.json")], "no version is written on failure"


def _plan_json(uri: str) -> str:
    """A ProfilePlan as the operator would write it, but unchecked (so it may be invalid)."""
    plan = {"namespace": "ns", "dataset": "ds", "storeUri": "file:///unused", "spec": {"source": {"uri": uri}}}
    return json.dumps(plan)


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--spec", "{not json"], "InvalidSpec"),
        (["--spec", '{"namespace": "ns"}'], "InvalidSpec"),
        (["--spec", '{"source": {"uri": "sklearn://iris"}}'], "InvalidSpec"),  # a DatasetSpec is not a plan
        (["--spec", _plan_json("ftp://host/x.csv")], "InvalidSpec"),
        (["--spec", _plan_json("sklearn://mnist")], "UnknownDataset"),
        (["--spec", _plan_json("sklearn://iris?rows=x")], "InvalidSource"),
    ],
)
def test_bad_specs(
    argv: list[str], reason: str, termination_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_main(profile.main, argv, termination_log)
    assert (run.exit_code, run.result["reason"]) == (ExitCode.SPEC_ERROR, reason)
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr  # one clear line


@pytest.mark.parametrize("flag", ["--namespace", "--name"])
def test_the_plan_is_the_only_form(flag: str, store_root: str, capsys: pytest.CaptureFixture[str]) -> None:
    spec = profile_plan(store_root, "sklearn://iris").model_dump_json(by_alias=True)
    with pytest.raises(SystemExit) as exited:
        profile.main(["--spec", spec, flag, "x"])
    assert exited.value.code == ExitCode.USAGE
    assert "unrecognized arguments" in capsys.readouterr().err


def test_user_errors_log_one_line_and_tracebacks_only_at_debug(
    tmp_path: Path, termination_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--spec", profile_plan(tmp_path.as_uri(), (tmp_path / "nope.csv").as_uri()).model_dump_json(by_alias=True)]
    quiet = run_cli("profile", argv, termination_log)  # the real console script, as in a pod
    assert quiet.exit_code == ExitCode.STORE_ERROR and "Traceback" not in quiet.stderr
    assert "profile failed: ObjectNotFound: not found in the store" in quiet.stderr
    assert quiet.result == json.loads(quiet.termination_message)
    capsys.readouterr()
    loud = run_main(profile.main, [*argv, "--log-level", "debug"], termination_log)
    assert loud.exit_code == ExitCode.STORE_ERROR and "Traceback" in capsys.readouterr().err


def test_unwritable_termination_path_is_ignored(store_root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contracts.ENV_TERMINATION_LOG, "/proc/no-such-dir/termination-log")
    spec = profile_plan(store_root, "sklearn://iris").model_dump_json(by_alias=True)
    assert profile.main(["--spec", spec]) == 0


def test_reference_npz_holds_only_plain_arrays(profiled_store: Any) -> None:
    profile_ = _load_profile(profiled_store("wine"))
    with zipfile.ZipFile(io.BytesIO(store.read_bytes(profile_.reference_uri))) as archive:
        assert all(name.endswith(".npy") for name in archive.namelist())
    for values in _reference(profile_).values():
        assert values.dtype == np.float64 and values.ndim == 1 and not np.isnan(values).any()


@pytest.mark.slow
def test_million_rows(tmp_path: Path, store_root: str, termination_log: Path) -> None:
    frame = synthetic_frame(1_000_000, seed=11, numeric=10, categorical=3)
    path = tmp_path / "big.parquet"
    frame.to_parquet(path)
    spec = profile_plan(store_root, path.as_uri()).model_dump_json(by_alias=True)
    run = run_cli("profile", ["--spec", spec], termination_log)
    assert run.exit_code == 0, run.stderr
    assert run.result["rows"] == 1_000_000
    profile_ = _load_profile(run.result)
    assert profile_.feature("x0").numeric.reference_size == REFERENCE_SAMPLE_MAX  # type: ignore[union-attr]
