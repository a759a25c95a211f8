from __future__ import annotations

from datetime import timedelta

from mlops_operator import conditions as cond
from tests.unit.factories import NOW

LATER = NOW + timedelta(minutes=5)


def test_first_set_appends_with_transition_time_and_generation() -> None:
    c = cond.set_condition([], "Trained", cond.UNKNOWN, "JobRunning", "running", now=NOW, generation=3)
    (only,) = c
    assert (only.type, only.status, only.reason, only.last_transition_time, only.observed_generation) == (
        "Trained",
        cond.UNKNOWN,
        "JobRunning",
        NOW,
        3,
    )


def test_transition_time_moves_only_when_status_moves() -> None:
    c = cond.set_condition([], "Ready", cond.FALSE, "A", "a", now=NOW, generation=1)
    same_status = cond.set_condition(c, "Ready", cond.FALSE, "B", "b", now=LATER, generation=2)
    assert same_status[0].last_transition_time == NOW
    assert (same_status[0].reason, same_status[0].message, same_status[0].observed_generation) == (
        "B",
        "b",
        2,
    )
    flipped = cond.set_condition(same_status, "Ready", cond.TRUE, "Ready", "", now=LATER, generation=2)
    assert flipped[0].last_transition_time == LATER


def test_set_keeps_order_and_other_conditions() -> None:
    c = cond.set_condition([], "A", cond.TRUE, "X", "", now=NOW, generation=1)
    c = cond.set_condition(c, "B", cond.TRUE, "X", "", now=NOW, generation=1)
    c = cond.set_condition(c, "A", cond.FALSE, "Y", "", now=NOW, generation=1)
    assert [x.type for x in c] == ["A", "B"] and c[0].status == cond.FALSE and c[1].status == cond.TRUE


def test_ready_is_explained_by_the_first_dependency_that_is_not_true() -> None:
    c = cond.set_condition([], "DatasetResolved", cond.TRUE, "Ok", "", now=NOW, generation=1)
    assert cond.ready_from(c, ["DatasetResolved", "Serving"])[0] == cond.UNKNOWN
    c = cond.set_condition(c, "Serving", cond.FALSE, "RolloutFailed", "crash", now=NOW, generation=1)
    assert cond.ready_from(c, ["DatasetResolved", "Serving"]) == (cond.FALSE, "RolloutFailed", "crash")
    c = cond.set_condition(c, "Serving", cond.TRUE, "Serving", "", now=NOW, generation=1)
    assert cond.ready_from(c, ["DatasetResolved", "Serving"])[0] == cond.TRUE


def test_messages_are_bounded_like_the_crd_says() -> None:
    c = cond.set_condition([], "Ready", cond.FALSE, "X", "m" * 5000, now=NOW, generation=1)
    assert len(c[0].message) == 1024
