"""V2 tensor `data` → numpy, enforcing the declared `datatype` (docs/serving.md, "Datatypes").

- `BOOL` takes JSON `true`/`false` (read as 1.0/0.0 by a numeric feature);
- `INT*`/`UINT*` take JSON integers within the type's range, never booleans or fractions;
- `FP16/32/64` take JSON numbers within the type's range, never booleans;
- `BYTES` keeps each value as it is: strings for categorical features (a mixed 2-D tensor also
  carries the numbers of the numeric features, as clients of mixed models send it).
`null` is a missing value (NaN) in every numeric type. A numeric tensor becomes float64, the dtype
the pipelines were fitted on. Every refusal is an `InvalidInput` naming the input and the reason.

numpy alone would not tell: `np.array([true, 1.5])` is `[1.0, 1.5]` and `np.array([-5])` is a fine
int64 whatever the declared type, so booleans are looked for in the parsed lists, and integer
ranges are checked on the array.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlops_operator.workloads.serve.errors import InvalidInput

INT_RANGES: dict[str, tuple[int, int]] = {
    **{f"INT{bits}": (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) for bits in (8, 16, 32, 64)},
    **{f"UINT{bits}": (0, 2**bits - 1) for bits in (8, 16, 32, 64)},
}
FLOAT_MAX: dict[str, float] = {
    "FP16": float(np.finfo(np.float16).max),
    "FP32": float(np.finfo(np.float32).max),
    "FP64": float(np.finfo(np.float64).max),
}
NUMERIC_DATATYPES = frozenset({"BOOL", *INT_RANGES, *FLOAT_MAX})
DATATYPES = NUMERIC_DATATYPES | {"BYTES"}


def brief(value: Any, limit: int = 60) -> str:
    """A client's value in an error message, cut short: a message never echoes a megabyte back."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def to_array(data: Any, name: str, datatype: str, bools_possible: bool = True) -> NDArray[Any]:
    """The tensor's values: float64 (NaN = missing) for numeric datatypes, object for BYTES.

    `bools_possible=False` (see may_hold_bools) skips the value-by-value search for booleans."""
    if not isinstance(data, list):
        data = [data]
    try:
        # BYTES keeps each value's own type: a mixed row of numbers and strings stays mixed.
        arr = np.array(data, dtype=object) if datatype == "BYTES" else np.array(data)
    except (ValueError, TypeError):
        raise InvalidInput(f"input {name!r}: data is ragged or not a list of values") from None
    if datatype == "BYTES":
        return arr
    label, kind = f"input {name!r}", arr.dtype.kind
    if kind == "O" or (kind == "f" and datatype in INT_RANGES):
        # Nulls (missing) among the values, values of several JSON types, or integers numpy made
        # floats (past int64 and negative ones together): judged one by one, as they were sent.
        values = arr if kind == "O" else np.array(data, dtype=object)
        return values_or_missing(values.ravel(), label, datatype).reshape(arr.shape)
    if kind not in "biuf":
        raise _refusal(label, datatype, "strings")
    if bools_possible and kind != "b" and datatype != "BOOL" and holds_bool(data, arr.ndim):
        raise _refusal(label, datatype, "a boolean")
    if (kind == "b") != (datatype == "BOOL"):
        raise _refusal(label, datatype, "booleans" if kind == "b" else "numbers")
    if datatype in INT_RANGES:
        _check_range(arr, label, datatype, *INT_RANGES[datatype])
    elif datatype in ("FP16", "FP32"):  # every JSON number fits FP64 (orjson refuses 1e400)
        _check_range(arr, label, datatype, -FLOAT_MAX[datatype], FLOAT_MAX[datatype])
    return arr.astype(np.float64, copy=False)


def may_hold_bools(body: bytes) -> bool:
    """Whether a JSON document can hold a boolean at all. A boolean is only ever the literal `true`
    or `false`, so a body without those bytes has none, and the search of every value (a tenth of
    a 64-row request's time) is skipped."""
    return b"true" in body or b"false" in body


def holds_bool(data: list[Any], ndim: int) -> bool:
    """Whether the parsed JSON lists hold a boolean at depth `ndim` (numpy promotes them silently)."""
    if ndim <= 1:
        return any(type(v) is bool for v in data)
    if ndim == 2:
        return any(type(v) is bool for row in data for v in row)
    return any(holds_bool(row, ndim - 1) for row in data)


def values_or_missing(values: NDArray[Any], label: str, datatype: str = "FP64") -> NDArray[np.float64]:
    """One by one: each value must fit `datatype`, or be null (NaN)."""
    out = np.empty(values.shape[0], dtype=np.float64)
    for i, v in enumerate(values):
        if v is None:
            out[i] = np.nan
        elif _fits(v, datatype):
            out[i] = v
        elif datatype in INT_RANGES and type(v) is int:
            raise _out_of_range(v, label, datatype, *INT_RANGES[datatype])
        elif datatype in FLOAT_MAX and type(v) in (int, float):
            raise _out_of_range(v, label, datatype, -FLOAT_MAX[datatype], FLOAT_MAX[datatype])
        else:
            raise _refusal(label, datatype, brief(v) if type(v) in (int, float, bool) else type(v).__name__)
    return out


def _fits(v: Any, datatype: str) -> bool:
    t = type(v)
    if datatype == "BOOL":
        return t is bool
    if datatype in INT_RANGES:
        low, high = INT_RANGES[datatype]
        return t is int and low <= v <= high
    # FP: a number (never a bool) the type holds; an int is compared exactly, before any conversion
    return (t is int or t is float) and -FLOAT_MAX[datatype] <= v <= FLOAT_MAX[datatype]


def _refusal(label: str, datatype: str, got: str) -> InvalidInput:
    if datatype == "BOOL":
        expected = "true or false"
    elif datatype in INT_RANGES:
        low, high = INT_RANGES[datatype]
        expected = f"integers within [{low}, {high}]"
    else:
        expected = f"numbers within ±{_num(FLOAT_MAX[datatype])}"
    return InvalidInput(f"{label}: data does not fit {datatype}: expected {expected} (or null for missing), got {got}")


def _check_range(arr: NDArray[Any], label: str, datatype: str, low: float, high: float) -> None:
    if arr.size == 0:
        return
    smallest, largest = arr.min().item(), arr.max().item()  # Python numbers: exact comparisons
    if smallest < low or largest > high:
        raise _out_of_range(smallest if smallest < low else largest, label, datatype, low, high)


def _out_of_range(value: float, label: str, datatype: str, low: float, high: float) -> InvalidInput:
    return InvalidInput(f"{label}: {brief(value)} is out of range for {datatype} [{_num(low)}, {_num(high)}]")


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:.4g}"
