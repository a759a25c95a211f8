"""A file:// source on the store's claim cannot reach past it through a symbolic link: the profile
workload refuses the file (SourceNotAllowed) before reading a byte of it."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlops_operator.api.plans import ProfilePlan
from mlops_operator.workloads import confinement, profile
from mlops_operator.workloads.common import SpecError

from .conftest import synthetic_frame


def plan(store: Path, uri: str) -> ProfilePlan:
    return ProfilePlan.model_validate(
        {
            "namespace": "team-a",
            "dataset": "ds",
            "storeUri": store.as_uri(),
            "spec": {"source": {"uri": uri}, "schema": {"target": "target"}},
        }
    )


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    store, outside = tmp_path / "claim", tmp_path / "outside"
    (store / "team-a" / "raw").mkdir(parents=True)
    outside.mkdir()
    synthetic_frame(50, seed=1).to_csv(outside / "secret.csv", index=False)
    synthetic_frame(50, seed=2).to_csv(store / "team-a" / "raw" / "mine.csv", index=False)
    return store, outside


def test_a_file_on_the_claim_is_read(layout: tuple[Path, Path]) -> None:
    store, _ = layout
    result = profile.profile(plan(store, (store / "team-a" / "raw" / "mine.csv").as_uri()))
    assert result.ok and result.rows == 50


def test_a_link_out_of_the_claim_is_refused(layout: tuple[Path, Path]) -> None:
    store, outside = layout
    (store / "team-a" / "raw" / "link.csv").symlink_to(outside / "secret.csv")
    with pytest.raises(SpecError) as info:
        profile.profile(plan(store, (store / "team-a" / "raw" / "link.csv").as_uri()))
    assert info.value.reason == "SourceNotAllowed" and "through a symbolic link" in info.value.message


def test_a_linked_directory_under_a_prefix_is_refused(layout: tuple[Path, Path]) -> None:
    store, outside = layout
    (store / "team-a" / "raw" / "date=2026-11-30").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SpecError) as info:
        profile.profile(plan(store, (store / "team-a" / "raw").as_uri() + "/"))
    assert "secret.csv" in info.value.message and not list((store / "team-a").glob("datasets"))


def test_a_link_inside_the_claim_is_fine(layout: tuple[Path, Path]) -> None:
    store, _ = layout
    (store / "team-a" / "raw" / "alias.csv").symlink_to(store / "team-a" / "raw" / "mine.csv")
    assert profile.profile(plan(store, (store / "team-a" / "raw" / "alias.csv").as_uri())).ok


def _swap_after_check(monkeypatch: pytest.MonkeyPatch, swap: Callable[[], None]) -> None:
    """Run `swap` the moment the resolved-path check returns: the window a time-of-check-to-time-of-use
    attack aims for, made deterministic."""
    checked = confinement.check_source_files

    def check_then_swap(*args: Any, **kwargs: Any) -> None:
        checked(*args, **kwargs)
        swap()

    monkeypatch.setattr(confinement, "check_source_files", check_then_swap)


def test_a_file_swapped_for_a_link_after_the_check_is_refused(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, outside = layout
    mine = store / "team-a" / "raw" / "mine.csv"

    def swap() -> None:
        mine.unlink()
        mine.symlink_to(outside / "secret.csv")

    _swap_after_check(monkeypatch, swap)
    with pytest.raises(SpecError) as info:
        profile.profile(plan(store, mine.as_uri()))
    assert info.value.reason == "SourceNotAllowed" and "mine.csv" in info.value.message
    assert not list((store / "team-a").glob("datasets/ds/*/complete.json"))  # no version of the secret


def test_a_directory_swapped_for_a_link_after_the_check_is_refused(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, outside = layout
    raw = store / "team-a" / "raw"
    (outside / "mine.csv").write_bytes((outside / "secret.csv").read_bytes())  # same name out there

    def swap() -> None:
        raw.rename(store / "team-a" / "raw-old")
        raw.symlink_to(outside, target_is_directory=True)

    _swap_after_check(monkeypatch, swap)
    with pytest.raises(SpecError) as info:
        profile.profile(plan(store, raw.as_uri() + "/"))
    assert info.value.reason == "SourceNotAllowed"


def test_a_link_swapped_to_stay_inside_is_still_read(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = layout
    raw = store / "team-a" / "raw"
    (raw / "other.csv").write_bytes((raw / "mine.csv").read_bytes())

    def swap() -> None:
        (raw / "mine.csv").unlink()
        (raw / "mine.csv").symlink_to("../raw/./other.csv")  # relative, through .., still on the claim

    _swap_after_check(monkeypatch, swap)
    assert profile.profile(plan(store, (raw / "mine.csv").as_uri())).rows == 50


def test_open_beneath_resolves_links_against_the_root(tmp_path: Path) -> None:
    root = tmp_path / "claim"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f.csv").write_bytes(b"x,y\n1,2\n")
    (root / "abs").symlink_to(root / "a")  # absolute, inside
    (root / "up").symlink_to("../claim/a/b/f.csv")  # relative, leaves the root by name: refused
    (root / "loop").symlink_to("loop")
    (root / "fifo").parent.mkdir(exist_ok=True)
    os.mkfifo(root / "fifo")
    kw = {"uri": "file:///x", "store_uri": root.as_uri()}
    fd = confinement.open_beneath(str(root), "abs/b/f.csv", **kw)
    with os.fdopen(fd, "rb") as handle:
        assert handle.read() == b"x,y\n1,2\n"
    with pytest.raises(SpecError):
        confinement.open_beneath(str(root), "up", **kw)
    with pytest.raises(SpecError):
        confinement.open_beneath(str(root), "a/../../claim/a/b/f.csv", **kw)
    with pytest.raises(OSError) as loop:
        confinement.open_beneath(str(root), "loop", **kw)
    assert loop.value.errno == errno.ELOOP
    with pytest.raises(OSError) as fifo:
        confinement.open_beneath(str(root), "fifo", **kw)
    assert fifo.value.errno == errno.EINVAL
    with pytest.raises(FileNotFoundError):
        confinement.open_beneath(str(root), "a/missing.csv", **kw)
