"""V2 client compatibility: KServe's own REST client (InferRequest/InferResponse) against a server.

Runs in the kserve venv. usage: python compat_check.py <base_url> <model_name> <rows.json>
Prints {"ok": bool, "predict": [...]} and exits non-zero on a mismatch in shape or datatype.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


async def check(base_url: str, name: str, rows: list[list[float]]) -> dict[str, object]:
    data = np.asarray(rows, dtype=np.float64)
    tensor = InferInput(name="input-0", shape=list(data.shape), datatype="FP64")
    tensor.set_data_from_numpy(data, binary_data=False)
    request = InferRequest(model_name=name, infer_inputs=[tensor], request_id="compat-1")
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    try:
        response = await client.infer(base_url, request, model_name=name)
        ready = await client.is_model_ready(base_url, name)
    finally:
        await client.close()
    output = response.outputs[0]
    predict = output.as_numpy()
    ok = ready and response.id == "compat-1" and predict.shape[0] == len(rows)
    return {"ok": bool(ok), "predict": predict.ravel().tolist(), "datatype": output.datatype}


if __name__ == "__main__":
    url, model_name, rows_path = sys.argv[1:4]
    result = asyncio.run(check(url, model_name, json.loads(Path(rows_path).read_text())))
    print(json.dumps(result))
    sys.exit(0 if result["ok"] else 1)
