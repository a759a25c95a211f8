"""The reference endpoint: the least a V2 server can do. uvicorn + Starlette + orjson, one route.

Open Inference Protocol V2 REST, the same work as every server in the benchmark: parse the request
body (one FP64 tensor), `model.predict`, answer a V2 response. No validation beyond what a crash
would give, no metrics, no logging, no content negotiation: what is left is the cost of HTTP,
routing, JSON and numpy, which no real server can go below. Runs in its own venv
(/var/tmp/bench-reference, setup.sh), where Starlette is installed and uvicorn, httptools, uvloop,
orjson, numpy, scikit-learn and joblib have the exact versions of the project's .venv.

usage: python reference_server.py <model.joblib> <name> <port> [--workers 1]
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import joblib
import numpy as np
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_DTYPES = {"INT64": np.int64, "INT32": np.int32, "FP64": np.float64, "FP32": np.float32, "BOOL": np.bool_}
_model: Any = None
_name = ""


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    global _model, _name
    _model = joblib.load(os.environ["REFERENCE_MODEL"])  # in each worker process
    _name = os.environ["REFERENCE_NAME"]
    yield


async def infer(request: Request) -> Response:
    tensor = orjson.loads(await request.body())["inputs"][0]
    x = np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
    y = _model.predict(x)
    body = {
        "model_name": _name,
        "outputs": [
            {
                "name": "predict",
                "shape": list(y.shape),
                "datatype": next((k for k, v in _DTYPES.items() if y.dtype == v), "FP64"),
                "data": y.tolist(),
            }
        ],
    }
    return Response(orjson.dumps(body), media_type="application/json")


async def ready(request: Request) -> Response:
    return Response(b"{}", media_type="application/json")


app = Starlette(
    routes=[
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
    ],
    lifespan=_lifespan,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("name")
    parser.add_argument("port", type=int)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    os.environ["REFERENCE_MODEL"], os.environ["REFERENCE_NAME"] = args.model, args.name
    uvicorn.run(
        "reference_server:app",
        app_dir=os.path.dirname(os.path.abspath(__file__)),
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        http="httptools",
        loop="uvloop",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
