"""The booleans pre-check of V2 parsing (serve/tensors.py): skipping the per-value search is only
allowed when the body cannot hold a boolean."""

from __future__ import annotations

import orjson
import pytest

from mlops_operator.workloads.serve.errors import InvalidInput
from mlops_operator.workloads.serve.tensors import may_hold_bools, to_array


@pytest.mark.parametrize(
    ("doc", "possible"),
    [
        ({"inputs": [{"data": [[1.5, 2, -3e10, None]]}]}, False),
        ({"inputs": [{"data": [[1.5, True]]}]}, True),
        ({"inputs": [{"data": [[False, 2.0]]}]}, True),
        ({"id": "true-story", "inputs": [{"data": [[1.0]]}]}, True),  # a string: only a slower search
    ],
)
def test_a_body_without_the_literals_holds_no_boolean(doc: object, possible: bool) -> None:
    assert may_hold_bools(orjson.dumps(doc)) is possible


def test_booleans_among_numbers_are_refused_whenever_the_body_may_hold_them() -> None:
    body = orjson.dumps({"data": [[1.0, True], [0.5, 2.0]]})
    data = orjson.loads(body)["data"]
    with pytest.raises(InvalidInput, match="does not fit FP64"):
        to_array(data, "x", "FP64", bools_possible=may_hold_bools(body))
    assert to_array([[1.0, 2.0]], "x", "FP64", bools_possible=False).tolist() == [[1.0, 2.0]]
