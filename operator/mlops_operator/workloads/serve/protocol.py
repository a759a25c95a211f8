"""Request parsing and response shaping: Open Inference Protocol V2 REST and `POST /predict`.

V2 inputs are accepted in the two forms existing clients send:
- one 2-D tensor [N, F] (any name; columns in the model's feature order), data nested or flat;
- one 1-D tensor per feature, named by the feature ([N] or [N, 1]): MLServer's pandas codec form.
Missing values: `null` is accepted as missing (NaN) and is an error only if the model cannot handle
it. JSON NaN/Infinity literals are malformed JSON. Strings are refused for numeric features, and
numbers for categorical ones. Declared datatypes are enforced (`tensors.py`), and a tensor's shape
is judged before its data is converted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from mlops_operator.workloads.serve import ids
from mlops_operator.workloads.serve.errors import InvalidInput, PayloadTooLarge
from mlops_operator.workloads.serve.model import Batch, Prediction, ServedModel
from mlops_operator.workloads.serve.tensors import (
    DATATYPES,
    brief,
    holds_bool,
    may_hold_bools,
    to_array,
    values_or_missing,
)

PREDICT_OUTPUT = "predict"
PROBA_OUTPUT = "predict_proba"
KNOWN_OUTPUTS = (PREDICT_OUTPUT, PROBA_OUTPUT)


@dataclass
class V2Request:
    batch: Batch
    outputs: tuple[str, ...] = (PREDICT_OUTPUT,)
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


def loads(body: bytes) -> Any:
    if not body:
        raise InvalidInput("empty body: expected a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"malformed JSON: {exc}") from None


# --- V2 ------------------------------------------------------------------------------------------
def parse_v2(body: bytes, model: ServedModel, max_rows: int) -> V2Request:
    doc = loads(body)
    if not isinstance(doc, dict):
        raise InvalidInput("an inference request must be a JSON object with 'inputs'")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput("'inputs' must be a non-empty list of tensors")
    request_id = doc.get("id")
    if request_id is not None:
        request_id = ids.checked(request_id, "'id'")
    parameters = doc.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidInput("'parameters' must be an object")
    bools = may_hold_bools(body)
    tensors = [_tensor(t, i, max_rows, len(model.features), bools) for i, t in enumerate(inputs)]
    if len(tensors) == 1 and tensors[0].shape_rank == 2:
        batch = _batch_from_matrix(tensors[0], model)
    else:
        batch = _batch_from_columns(tensors, model)
    return V2Request(batch, _requested_outputs(doc.get("outputs"), parameters, model), request_id, parameters)


@dataclass
class _Tensor:
    name: str
    datatype: str
    shape: list[int]
    data: NDArray[Any]

    @property
    def shape_rank(self) -> int:
        return len(self.shape)


def _tensor(raw: Any, position: int, max_rows: int, n_features: int, bools: bool = True) -> _Tensor:
    if not isinstance(raw, dict):
        raise InvalidInput(f"inputs[{position}] must be an object with name, shape, datatype, data")
    name, datatype = raw.get("name"), raw.get("datatype")
    if not isinstance(name, str):
        raise InvalidInput(f"inputs[{position}].name must be a string")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise InvalidInput(f"input {name!r}: datatype must be one of {sorted(DATATYPES)}, got {brief(datatype)}")
    shape = _shape(raw.get("shape"), name, max_rows, n_features)
    if "data" not in raw:
        raise InvalidInput(f"input {name!r}: 'data' is missing")
    size, raw_data = math.prod(shape), raw["data"]
    if isinstance(raw_data, list) and len(raw_data) not in (size, shape[0]):  # before converting it
        raise InvalidInput(f"input {name!r}: shape {shape} needs {size} values, got {len(raw_data)} items")
    data = to_array(raw_data, name, datatype, bools)
    if data.size != size:
        raise InvalidInput(f"input {name!r}: shape {shape} needs {size} values, got {data.size}")
    return _Tensor(name, datatype, shape, data.reshape(shape))


def _shape(shape: Any, name: str, max_rows: int, n_features: int) -> list[int]:
    """A shape judged before any data is converted: [rows] or [rows, columns] of non-negative
    integers, rows within the batch limit and columns within the model's width, so every shape that
    passes is a small array."""
    if not isinstance(shape, list) or not 1 <= len(shape) <= 2 or any(type(d) is not int or d < 0 for d in shape):
        raise InvalidInput(f"input {name!r}: shape must be [rows] or [rows, columns] of non-negative integers")
    if shape[0] > max_rows:
        raise PayloadTooLarge(f"input {name!r}: {shape[0]} rows is over the limit of {max_rows}")
    if shape[0] == 0:
        raise InvalidInput("the batch has no rows")
    if len(shape) == 2 and shape[1] > max(n_features, 1):
        raise InvalidInput(f"input {name!r}: expected {n_features} features per row, got {shape[1]}")
    return shape


def _strings_or_missing(values: NDArray[Any], label: str) -> NDArray[Any]:
    out = np.empty(values.shape[0], dtype=object)
    for i, v in enumerate(values):
        if v is None or (type(v) is float and v != v):  # null, or null in a numeric tensor
            out[i] = np.nan
        elif type(v) is str:
            out[i] = v
        else:
            raise InvalidInput(f"{label}: expected strings (or null for missing), got {type(v).__name__}")
    return out


def _numeric(values: NDArray[Any], label: str) -> NDArray[np.float64]:
    if values.dtype.kind in "fiu":
        return values.astype(np.float64, copy=False)
    if values.dtype.kind == "O":
        return values_or_missing(values.ravel(), label).reshape(values.shape)
    raise InvalidInput(f"{label}: expected numbers, got {'booleans' if values.dtype.kind == 'b' else 'strings'}")


def _check_rows(rows: int, max_rows: int) -> None:
    if rows == 0:
        raise InvalidInput("the batch has no rows")
    if rows > max_rows:
        raise PayloadTooLarge(f"{rows} rows is over the batch limit of {max_rows}")


def _batch_from_matrix(t: _Tensor, model: ServedModel) -> Batch:
    rows, width = t.shape  # rows > 0: see _shape
    expected = len(model.features)
    if width != expected:
        raise InvalidInput(f"input {t.name!r}: expected {expected} features per row, got {width}")
    if model.all_numeric:
        return Batch(rows, matrix=_numeric(t.data, f"input {t.name!r}").reshape(rows, width))
    return Batch(rows, columns=_typed_columns([t.data[:, j] for j in range(width)], model))


def _typed_columns(columns: list[NDArray[Any]], model: ServedModel) -> list[NDArray[Any]]:
    out: list[NDArray[Any]] = []
    for feature, col in zip(model.features, columns, strict=True):
        label = f"feature {feature.name!r}"
        if feature.categorical:
            out.append(_strings_or_missing(np.asarray(col, dtype=object), label))
        else:
            out.append(_numeric(col, label))
    return out


def _batch_from_columns(tensors: list[_Tensor], model: ServedModel) -> Batch:
    by_name: dict[str, _Tensor] = {}
    for t in tensors:
        if t.name in by_name:
            raise InvalidInput(f"input {t.name!r} is given twice")
        if t.shape_rank == 2 and t.shape[1] != 1:
            raise InvalidInput(
                f"input {t.name!r}: send one 2-D tensor [rows, {len(model.features)}] or one 1-D tensor per feature"
            )
        by_name[t.name] = t
    _check_names(set(by_name), model)
    rows = {t.shape[0] for t in tensors}
    if len(rows) != 1:
        raise InvalidInput(f"every input needs the same number of rows, got {sorted(rows)}")
    n = rows.pop()
    columns = [by_name[name].data.reshape(n) for name in model.feature_names]
    typed = _typed_columns(columns, model)
    if model.all_numeric:
        return Batch(n, matrix=np.column_stack(typed))
    return Batch(n, columns=typed)


def _check_names(given: set[str], model: ServedModel) -> None:
    expected = set(model.feature_names)
    if given == expected:
        return
    missing, unknown = sorted(expected - given), sorted(given - expected)
    parts = []
    if missing:
        parts.append(f"missing {missing}")
    if unknown:
        parts.append(f"unknown {unknown}")
    raise InvalidInput(
        f"inputs do not match the model's features: {'; '.join(parts)}; expected {list(model.feature_names)}"
    )


def _requested_outputs(raw: Any, parameters: dict[str, Any], model: ServedModel) -> tuple[str, ...]:
    if raw is None:
        names = [PREDICT_OUTPUT]
        if parameters.get(PROBA_OUTPUT) is True:
            names.append(PROBA_OUTPUT)
    else:
        if not isinstance(raw, list) or not raw or not all(isinstance(o, dict) for o in raw):
            raise InvalidInput("'outputs' must be a non-empty list of {\"name\": ...} objects")
        names = [o.get("name") for o in raw]  # type: ignore[misc]
        unknown = [n for n in names if n not in KNOWN_OUTPUTS]
        if unknown:
            raise InvalidInput(f"unknown outputs {unknown}; this model offers {list(KNOWN_OUTPUTS)}")
    if PROBA_OUTPUT in names and not model.has_proba:
        raise InvalidInput(f"this model has no {PROBA_OUTPUT} output")
    return tuple(dict.fromkeys(names))


def _tensor_out(name: str, values: NDArray[Any]) -> dict[str, Any]:
    kind = values.dtype.kind
    if kind in "iu":
        datatype, data = "INT64", values
    elif kind == "f":
        datatype, data = "FP64", values
    elif kind == "b":
        datatype, data = "BOOL", values
    else:
        datatype, data = "BYTES", values.astype(str).tolist()
    return {
        "name": name,
        "datatype": datatype,
        "shape": list(values.shape),
        "data": data.reshape(-1) if kind in "iufb" else data,
    }


def v2_response(model: ServedModel, request: V2Request, prediction: Prediction) -> bytes:
    outputs = []
    for name in request.outputs:
        values = prediction.labels if name == PREDICT_OUTPUT else prediction.proba
        assert values is not None
        outputs.append(_tensor_out(name, values))
    doc: dict[str, Any] = {"model_name": model.name, "model_version": model.version, "outputs": outputs}
    if request.id is not None:
        doc["id"] = request.id
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


# --- POST /predict ----------------------------------------------------------------------------------
def parse_records(body: bytes, model: ServedModel, max_rows: int) -> Batch:
    doc = loads(body)
    records = doc.get("records") if isinstance(doc, dict) else doc
    if not isinstance(records, list):
        raise InvalidInput('expected {"records": [{feature: value, ...}, ...]} or a list of records')
    _check_rows(len(records), max_rows)
    names = model.feature_names
    expected = set(names)
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise InvalidInput(f"records[{i}] must be an object of feature: value")
        if rec.keys() != expected:
            try:
                _check_names(set(rec), model)
            except InvalidInput as exc:
                raise InvalidInput(f"records[{i}]: {exc.message}") from None
    n = len(records)
    if model.all_numeric:
        rows = [[rec[f] for f in names] for rec in records]
        try:
            matrix = np.array(rows)
        except (ValueError, TypeError):
            raise InvalidInput("records hold values that are not numbers") from None
        if matrix.dtype.kind in "fiu" and not (may_hold_bools(body) and holds_bool(rows, 2)):  # true reads as 1.0
            return Batch(n, matrix=matrix.astype(np.float64, copy=False))
        if matrix.dtype.kind not in "Ofiu":
            raise InvalidInput("records hold values that are not numbers (or null for missing)")
        values = values_or_missing(matrix.ravel(), "records")
        return Batch(n, matrix=values.reshape(n, len(names)))
    columns = [np.array([rec[f] for rec in records], dtype=object) for f in names]
    return Batch(n, columns=_typed_columns(columns, model))


def records_response(prediction: Prediction) -> bytes:
    labels = prediction.labels
    data = labels if labels.dtype.kind in "iufb" else labels.astype(str).tolist()
    return orjson.dumps({"predictions": data}, option=orjson.OPT_SERIALIZE_NUMPY)


# --- metadata ----------------------------------------------------------------------------------------
def model_metadata(model: ServedModel) -> dict[str, Any]:
    outputs: list[dict[str, Any]] = [{"name": PREDICT_OUTPUT, "datatype": _label_datatype(model), "shape": [-1]}]
    if model.has_proba and model.classes is not None:
        outputs.append({"name": PROBA_OUTPUT, "datatype": "FP64", "shape": [-1, len(model.classes)]})
    return {
        "name": model.name,
        "versions": [model.version],
        "platform": "sklearn",
        "inputs": [{"name": f.name, "datatype": f.datatype, "shape": [-1]} for f in model.features],
        "outputs": outputs,
        "parameters": {"feature_order": list(model.feature_names)},
    }


def _label_datatype(model: ServedModel) -> str:
    if model.classes is None:
        return "FP64"
    kind = model.classes.dtype.kind
    return "INT64" if kind in "iu" else "FP64" if kind == "f" else "BOOL" if kind == "b" else "BYTES"
