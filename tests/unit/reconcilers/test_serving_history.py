"""Serving periods (issue 15 item 2): v1 → v2 → roll back to v1 → v3, then "what served at T"."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mlops_operator.api import history
from mlops_operator.api.v1alpha1.model import ModelVersion, VersionState
from mlops_operator.api.v1alpha1.serving_periods import MAX_SERVING_PERIODS, PeriodEnd
from mlops_operator.reconcilers.model import versions as ledger
from mlops_operator.workloads import registry
from tests.unit.factories import NOW

S = VersionState
T1, T2, T3, T4 = (NOW + timedelta(hours=h) for h in (1, 2, 3, 4))
SECOND = timedelta(seconds=1)


def trained(n: int) -> ModelVersion:
    return ModelVersion(
        version=n,
        state=S.VALIDATED,
        dataset_version=f"d{n}",
        metrics={"accuracy": 0.9 + n / 100},
        artifact_uri=f"file:///m/v{n}",
        sha256="a" * 64,
    )


def serve(versions: list[ModelVersion], n: int, at: object) -> None:
    """What serving.py does for a Manual Model once `n`'s rollout completes: approve, mark serving."""
    record = ledger.find(versions, n)
    assert record is not None
    ledger.approve(record, at, "Manual")  # type: ignore[arg-type]
    ledger.mark_serving(versions, n, at, "spec.approvedVersion")  # type: ignore[arg-type]


@pytest.fixture
def story() -> list[ModelVersion]:
    versions = [trained(1), trained(2)]
    serve(versions, 1, T1)
    serve(versions, 2, T2)
    serve(versions, 1, T3)  # the rollback: a retired version approved again
    versions.append(trained(3))
    serve(versions, 3, T4)
    return versions


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (T1 - SECOND, None),  # before anything served
        (T1, 1),  # the first instant of v1's first period
        (T2 + timedelta(minutes=30), 2),
        (T3, 1),  # the rollback's instant belongs to v1, not to v2 whose period ends then
        (T4 - SECOND, 1),
        (T4, 3),
        (T4 + timedelta(days=400), 3),  # v3 still serves
    ],
)
def test_what_served_at_an_instant(story: list[ModelVersion], at: object, expected: int | None) -> None:
    found = history.served_at(story, at)  # type: ignore[arg-type]
    assert (found[0].version if found else None) == expected


def test_periods_are_appended_with_why_they_ended_and_who(story: list[ModelVersion]) -> None:
    v1, v2, v3 = story
    assert [(p.start, p.to, p.ended_by) for p in v1.serving_periods] == [
        (T1, T2, PeriodEnd.SUPERSEDED),
        (T3, T4, PeriodEnd.SUPERSEDED),
    ]
    assert [(p.start, p.to, p.ended_by) for p in v2.serving_periods] == [(T2, T3, PeriodEnd.ROLLED_BACK)]
    assert [(p.start, p.to, p.ended_by, p.by) for p in v3.serving_periods] == [(T4, None, None, "spec.approvedVersion")]
    assert [v.state for v in story] == [S.RETIRED, S.RETIRED, S.SERVING]


def test_marking_the_serving_version_again_opens_no_new_period(story: list[ModelVersion]) -> None:
    ledger.mark_serving(story, 3, T4 + timedelta(hours=1))  # every reconcile of a completed rollout does this
    assert len(story[2].serving_periods) == 1 and story[2].serving_periods[0].to is None


def test_a_rejected_champion_ends_its_period_as_rejected(story: list[ModelVersion]) -> None:
    ledger.reject_by_user(story, {3: "biased"})
    serve(story, 2, T4 + SECOND)
    assert story[2].serving_periods[-1].ended_by == PeriodEnd.REJECTED
    assert story[2].serving_periods[-1].to == T4 + SECOND


def test_disabling_serving_closes_the_period_and_nothing_serves_after(story: list[ModelVersion]) -> None:
    later = T4 + timedelta(hours=1)
    assert [v.version for v in ledger.end_serving(story, later, PeriodEnd.SERVING_DISABLED)] == [3]
    assert history.served_at(story, later) is None
    assert ledger.end_serving(story, later + SECOND, PeriodEnd.SERVING_DISABLED) == []  # idempotent


def test_status_keeps_the_newest_periods_and_counts_the_rest() -> None:
    versions = [trained(1), trained(2)]
    for hour in range(2 * MAX_SERVING_PERIODS + 4):
        serve(versions, 1 + hour % 2, NOW + timedelta(hours=hour))
    v1 = versions[0]
    assert len(v1.serving_periods) == MAX_SERVING_PERIODS and v1.earlier_periods == 2
    assert v1.serving_periods[0].start == NOW + timedelta(hours=4)  # the two oldest (0 h, 2 h) left status


def test_the_store_keeps_every_period_and_hands_back_the_status_bound() -> None:
    versions = [trained(1), trained(2)]
    document = None
    for hour in range(2 * MAX_SERVING_PERIODS + 4):  # mirrored after every change, as the Job does
        serve(versions, 1 + hour % 2, NOW + timedelta(hours=hour))
        document = registry.merge(document, "ns", "m", versions)
    assert document is not None
    stored_v1 = document["versions"][0]
    assert len(stored_v1["servingPeriods"]) == MAX_SERVING_PERIODS + 2 and "earlierPeriods" not in stored_v1
    assert stored_v1["servingPeriods"][0]["from"] == "2026-01-02T03:04:05Z"
    assert all(p.get("to") for p in stored_v1["servingPeriods"][:-1])  # closed periods were updated in place
    newest = {r.version: r for r in registry.newest_records(document)}
    assert len(newest[1].serving_periods) == MAX_SERVING_PERIODS and newest[1].earlier_periods == 2


def test_a_recreated_model_gets_its_history_back_and_the_lost_server_ends_its_period(
    story: list[ModelVersion],
) -> None:
    document = registry.merge(None, "ns", "m", story)
    recreated_at = T4 + timedelta(days=1)
    restored, _ = ledger.restore(registry.newest_records(document), 3, 20, recreated_at)
    v3 = restored[2]
    assert (v3.serving_periods[0].to, v3.serving_periods[0].ended_by) == (recreated_at, PeriodEnd.DELETED)
    for at, expected in ((T1, 1), (T2, 2), (T3, 1), (T4, 3)):
        found = history.served_at(restored, at)
        assert found is not None and found[0].version == expected
    # rolled out again from its record: a new period, not the old one reopened
    ledger.mark_serving(restored, 3, recreated_at + SECOND)
    assert [p.ended_by for p in v3.serving_periods] == [PeriodEnd.DELETED, None]
    assert history.served_at(restored, recreated_at) is None  # between restore and the new rollout


def test_a_version_serving_since_before_periods_existed_gets_its_period_from_serving_at() -> None:
    champion = trained(1).model_copy(update={"state": S.SERVING, "serving_at": T1})
    ledger.mark_serving([champion], 1, T2)  # the first reconcile after the upgrade
    assert [(p.start, p.to) for p in champion.serving_periods or []] == [(T1, None)]
