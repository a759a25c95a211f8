"""The merged profile's reads into reused and final memory give what a plain reading gives.

A version of many parts reads each part's sample prefix through one reused buffer, copies each column
straight into its merged sample, reads the row hashes straight into one array, and writes the
reference archive from the arrays' own memory. Checked here against plain numpy on the same files:
the merged reference is the sorted union of each part's first `allocation` sampled values, the
duplicate count is that of the concatenated rows, and reference.npz is byte for byte what
np.lib.format.write_array writes. Equal inputs give byte-identical version files.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_operator import contracts, store
from mlops_operator.api.plans import ProfilePlan
from mlops_operator.api.profile import REFERENCE_SAMPLE_MAX
from mlops_operator.workloads import parts, profile, summaries
from mlops_operator.workloads.parts import SAMPLE_BLOCK

ROWS_PER_FILE = 90_000  # three files: more than REFERENCE_SAMPLE_MAX values, so each gives a share
COPIED = 40  # rows of the first file repeated in each of the others: duplicates across files


def _source(root: Path) -> Path:
    rng = np.random.default_rng(5)
    first = None
    for i in range(3):
        frame = pd.DataFrame({
            "x": rng.normal(size=ROWS_PER_FILE),
            "y": np.where(rng.random(ROWS_PER_FILE) < 0.1, np.nan, rng.exponential(size=ROWS_PER_FILE)),
            "target": rng.integers(0, 2, ROWS_PER_FILE),
        })
        if first is None:
            first = frame
        else:
            frame.iloc[:COPIED] = first.iloc[:COPIED].to_numpy()
        directory = root / f"date={(date(2026, 11, 1) + timedelta(days=i)).isoformat()}"
        directory.mkdir(parents=True)
        frame.to_csv(directory / "part-0.csv", index=False)
    return root


def _plan(source: Path, store_root: Path) -> ProfilePlan:
    return ProfilePlan.model_validate({
        "namespace": "team", "dataset": "events", "storeUri": store_root.as_uri(),
        "spec": {"source": {"uri": source.as_uri() + "/"}, "schema": {"target": "target"}},
    })


def _version_files(store_root: Path, version: str) -> dict[str, Any]:
    directory = contracts.dataset_version_dir(store_root.as_uri(), "team", "events", version)
    profile_ = json.loads(store.read_bytes(store.join(directory, "profile.json")))
    for where in ("createdAt", "dataUri", "referenceUri"):  # the time, and the store's own paths
        profile_.pop(where)
    return {
        "reference": store.read_bytes(store.join(directory, "reference.npz")),
        "profile": profile_,
        "lineage": store.read_bytes(store.join(directory, "lineage.json")),
        "complete": store.read_bytes(store.join(directory, "complete.json")),
    }


def _plain_sample(part: parts.Part, column: str, count: int) -> np.ndarray:
    summary = part.summary
    raw = np.frombuffer(store.read_bytes(part.sample_uri), dtype="<f8")
    blocks = raw.reshape(-1, len(summary.sample_columns), SAMPLE_BLOCK)
    return blocks[:, summary.sample_columns.index(column), :].reshape(-1)[:count]


def test_the_merged_reference_and_duplicates_equal_a_plain_reading(tmp_path: Path) -> None:
    source = _source(tmp_path / "source")
    result = profile.profile(_plan(source, tmp_path / "store"))
    assert result.ok and result.rows == 3 * ROWS_PER_FILE
    files = _version_files(tmp_path / "store", result.version or "")
    dataset_dir = contracts.dataset_dir((tmp_path / "store").as_uri(), "team", "events")
    lineage = json.loads(files["lineage"])
    found = [parts.load(dataset_dir, f["part"]) for f in lineage["files"]]
    assert all(p is not None for p in found)
    with np.load(io.BytesIO(files["reference"]), allow_pickle=False) as archive:
        reference = {name: archive[name] for name in archive.files}
    for column in ("x", "y"):
        numeric = [next(f for f in p.summary.features if f.name == column).numeric for p in found]  # type: ignore[union-attr]
        finite = [sum(n.histogram_counts) for n in numeric if n is not None]
        available = [p.summary.sample_lengths[p.summary.sample_columns.index(column)] for p in found]  # type: ignore[union-attr]
        take = summaries.sample_allocation(finite, available)
        expected = np.sort(np.concatenate([_plain_sample(p, column, n) for p, n in zip(found, take, strict=True)]))  # type: ignore[arg-type]
        assert expected.size == REFERENCE_SAMPLE_MAX
        np.testing.assert_array_equal(reference[column], expected)
    hashes = np.concatenate([np.load(io.BytesIO(store.read_bytes(p.rows_uri))) for p in found])  # type: ignore[union-attr]
    assert hashes.size == len(np.unique(hashes)) + 2 * COPIED
    assert [(f.rule, f.count) for f in result.findings if f.rule == "duplicates"] == [("duplicates", 2 * COPIED)]
    again = profile.profile(_plan(source, tmp_path / "other-store"))
    assert again.version == result.version and _version_files(tmp_path / "other-store", again.version or "") == files


def test_the_reference_archive_is_what_numpy_writes() -> None:
    rng = np.random.default_rng(1)
    samples = {"file": np.sort(rng.normal(size=5000)), "empty": np.empty(0), "signed zeros": np.array([-0.0, 0.0]),
               "wide": np.sort(rng.normal(size=300_000))}
    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, values in samples.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, values, allow_pickle=False)
    assert summaries.reference_npz(samples) == plain.getvalue()
    with io.BytesIO() as seekable:
        summaries.write_reference(seekable, samples)
        assert seekable.getvalue() == plain.getvalue()


def test_a_failed_reference_write_leaves_no_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # reference.npz is written on a second thread beside profile.json and lineage.json: its failure
    # fails the run, and the version directory is neither complete nor left half-written.
    source = _source(tmp_path / "source")

    def failing(*_: object) -> None:
        raise store.StoreError("StoreUnavailable", "the disk went away")

    monkeypatch.setattr(summaries, "write_reference", failing)
    with pytest.raises(store.StoreError, match="the disk went away"):
        profile.profile(_plan(source, tmp_path / "store"))
    datasets = tmp_path / "store" / "team" / "datasets" / "events"
    assert sorted(p.name for p in datasets.iterdir()) == ["cache", "parts"]  # no version, no temporary one
    monkeypatch.undo()
    result = profile.profile(_plan(source, tmp_path / "store"))
    assert result.ok and (datasets / (result.version or "") / "complete.json").exists()


def test_a_part_gone_from_the_store_is_made_again_from_its_file(tmp_path: Path) -> None:
    # Parts of files whose hash is cached are loaded on a second thread; one whose part is missing is
    # read and parsed again, and the version is the same.
    source = _source(tmp_path / "source")
    first = profile.profile(_plan(source, tmp_path / "store"))
    dataset_dir = contracts.dataset_dir((tmp_path / "store").as_uri(), "team", "events")
    lineage = json.loads(store.read_bytes(store.join(dataset_dir, first.version or "", "lineage.json")))
    gone = tmp_path / "store" / "team" / "datasets" / "events" / "parts" / f"{lineage['files'][1]['part']}.json"
    gone.unlink()
    again = profile.profile(_plan(source, tmp_path / "store"))
    assert again.ok and again.version == first.version
    assert gone.exists() and parts.load(dataset_dir, lineage["files"][1]["part"]) is not None
