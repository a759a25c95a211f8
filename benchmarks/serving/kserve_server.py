"""KServe's Python model server with a `kserve.Model` that loads and predicts the way KServe's own
scikit-learn server (kserve/sklearnserver, not on PyPI) does: joblib.load, then
get_predict_input -> model.predict -> get_predict_response. Request logging is off, and the server
is bound to 127.0.0.1 (KServe hard-codes 0.0.0.0). Runs in the benchmark's kserve venv.

usage: python kserve_server.py <model.joblib> <name> <port>
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import joblib
import kserve
import uvicorn
from kserve.utils.utils import get_predict_input, get_predict_response

_original_config_init = uvicorn.Config.__init__


def _loopback_config_init(self: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
    kwargs["host"] = "127.0.0.1"
    _original_config_init(self, *args, **kwargs)


uvicorn.Config.__init__ = _loopback_config_init  # type: ignore[method-assign]


class SKLearnModel(kserve.Model):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self._model: Any = None

    def load(self) -> bool:
        self._model = joblib.load(self.path)
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: Any = None) -> Any:
        instances = get_predict_input(payload)
        result = self._model.predict(instances)
        return get_predict_response(payload, result, self.name)


if __name__ == "__main__":
    path, name, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    model = SKLearnModel(name, path)
    model.load()
    for logger in ("uvicorn.access", "kserve.trace"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    kserve.ModelServer(http_port=port, enable_grpc=False, enable_latency_logging=False).start([model])
