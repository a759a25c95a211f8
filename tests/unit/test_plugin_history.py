"""`kubectl mlops history [--at TIME]` (issue 15 item 2): serving periods, and what served at an instant."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops_operator.api.v1alpha1 import Model
from tests.unit.test_plugin import FakeCluster, mlops, sample, stamp

T1, T2, T3, T4 = stamp(240), stamp(180), stamp(120), stamp(60)


def record(n: int, state: str, periods: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "version": n,
        "state": state,
        "datasetVersion": f"{n}" * 64,
        "metrics": {"accuracy": 0.9 + n / 100, "f1": 0.8 + n / 100},
        "servingPeriods": periods,
        **extra,
    }


def story_model(**v1_extra: Any) -> Model:
    """v1 → v2 → rolled back to v1 → v3, as the operator records it."""
    by = "spec.approvedVersion"
    body = sample("model-manual.yaml")
    body["status"] = {
        "phase": "Serving",
        "latestVersion": 3,
        "servingVersion": 3,
        "versions": [
            record(
                1,
                "Retired",
                [
                    {"from": T1, "to": T2, "endedBy": "Superseded", "by": by},
                    {"from": T3, "to": T4, "endedBy": "Superseded", "by": by},
                ],
                **v1_extra,
            ),
            record(2, "Retired", [{"from": T2, "to": T3, "endedBy": "RolledBack", "by": by}]),
            record(3, "Serving", [{"from": T4, "by": by}]),
        ],
    }
    return Model.model_validate(body)


@pytest.mark.parametrize(
    ("at", "version"),
    [(stamp(241), None), (T1, 1), (stamp(150), 2), (T3, 1), (stamp(59), 3)],
)
def test_at_answers_with_the_version_its_dataset_metrics_and_approver(
    monkeypatch: pytest.MonkeyPatch, at: str, version: int | None
) -> None:
    cluster = FakeCluster(story_model())
    code, out, err = mlops(monkeypatch, cluster, "history", "breast-cancer-rf", "--at", at, "-o", "json")
    assert (code, err) == (0, "")
    answer = json.loads(out)
    assert answer["version"] == version and answer["at"] == at
    if version is not None:
        assert answer["datasetVersion"] == f"{version}" * 64
        assert answer["metrics"]["accuracy"] == pytest.approx(0.9 + version / 100)
        assert answer["approvedBy"] == "spec.approvedVersion"
    code, text, _ = mlops(monkeypatch, cluster, "history", "breast-cancer-rf", "--at", at)
    if version is None:
        assert text.strip() == f"model breast-cancer-rf: nothing served at {at}"
    else:
        assert text.startswith(f"model breast-cancer-rf at {at}: version {version}\n")
        assert f"dataset:   {str(version) * 64}\n" in text and "approver:  spec.approvedVersion" in text


def test_at_takes_an_offset_and_answers_in_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    at = T3.replace("Z", "+00:00").replace("T", "t")
    code, out, _ = mlops(monkeypatch, FakeCluster(story_model()), "history", "breast-cancer-rf", "--at", at)
    assert code == 0 and "version 1" in out and "until " + T4 + " (Superseded)" in out


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("yesterday", "'yesterday' is not an RFC 3339 time"),
        ("2026-13-01T00:00:00Z", "is not an RFC 3339 time"),
        ("2026-11-01T10:00:00", "has no time zone"),
    ],
)
def test_a_bad_time_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], at: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        mlops(monkeypatch, FakeCluster(story_model()), "history", "breast-cancer-rf", "--at", at)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --at: '{at}' " in err and message in err


def test_a_time_in_the_future_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = mlops(
        monkeypatch, FakeCluster(story_model()), "history", "breast-cancer-rf", "--at", "2999-01-01T00:00:00Z"
    )
    assert (code, out) == (1, "") and err.startswith("error: --at 2999-01-01T00:00:00Z is in the future")


def test_without_at_the_periods_follow_the_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = mlops(monkeypatch, FakeCluster(story_model()), "history", "breast-cancer-rf")
    periods = out.split("Serving periods:\n")[1].splitlines()
    assert code == 0 and periods[0].split() == ["VERSION", "FROM", "TO", "ENDED-BY", "BY"]
    assert [line.split()[:4] for line in periods[1:]] == [
        ["1", T1, T2, "Superseded"],
        ["2", T2, T3, "RolledBack"],
        ["1", T3, T4, "Superseded"],
        ["3", T4, "serving", "-"],
    ]


def test_history_older_than_status_points_to_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = FakeCluster(story_model(earlierPeriods=3))
    code, out, _ = mlops(monkeypatch, cluster, "history", "breast-cancer-rf", "--at", stamp(300))
    assert code == 0
    assert out.strip() == (
        f"model breast-cancer-rf: nothing served at {stamp(300)} as far as status knows; status holds serving "
        f"history since {T1}; older periods are in the store's registry.json (the registry mirror)"
    )
    assert "older periods are in the store" in mlops(monkeypatch, cluster, "history", "breast-cancer-rf")[1]
