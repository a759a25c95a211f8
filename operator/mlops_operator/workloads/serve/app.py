"""The ASGI app: a hand-written router over raw ASGI, because the framework tax decides throughput.

For a cheap model (LogisticRegression predicts one row in ~85 µs), FastAPI/Starlette routing,
request objects and pydantic validation cost more than the model. Here a request is: one dict lookup
for the route, read the body, orjson → numpy, predict, numpy → orjson. Every client mistake is a
`ServeError` and becomes `{"error": ...}` with its 4xx status; anything else is a logged 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson

from mlops_operator import __version__, contracts
from mlops_operator.workloads.serve import feedback, ids, protocol
from mlops_operator.workloads.serve.auth import CHALLENGE, TokenCheck, Unauthorized
from mlops_operator.workloads.serve.collector import Collector
from mlops_operator.workloads.serve.errors import (
    InvalidInput,
    MethodNotAllowed,
    ModelNotFound,
    NotReady,
    PayloadTooLarge,
    ServeError,
    UnsupportedMediaType,
)
from mlops_operator.workloads.serve.metrics import ServeMetrics
from mlops_operator.workloads.serve.mirror import Mirror, Mirrored
from mlops_operator.workloads.serve.model import Batch, Prediction, ServedModel

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SERVER_NAME = "mlops-operator"
_JSON_HEADERS = [(b"content-type", b"application/json")]
_METRICS_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
# Triton's binary tensor data extension: a JSON header of this length, then raw tensor bytes.
_BINARY_EXTENSION = b"inference-header-content-length"
_REQUEST_ID = b"x-request-id"
_PREDICTION_ID = contracts.PREDICTION_ID_HEADER.lower().encode()


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 8 * 1024 * 1024
    max_batch_rows: int = 10_000


class ServeApp:
    """Routes: see docs/serving.md. `model` is None until loaded (then readiness is 503)."""

    def __init__(
        self,
        model_name: str,
        model_version: str,
        model: ServedModel | None,
        metrics: ServeMetrics,
        collector: Collector | None = None,
        limits: Limits = Limits(),
        predict_pool: ThreadPoolExecutor | None = None,
        label_writer: feedback.LabelWriter | None = None,
        collect_proba: bool = False,
        auth: TokenCheck | None = None,
        mirror: Mirror | None = None,
    ) -> None:
        self.model_name = model_name
        self.model_version = model_version
        self.ids = ids.Issuer(model_name)
        self.model = model
        self.metrics = metrics
        self.collector = collector
        self.limits = limits
        # For a slow model (runner.MODEL_BOUND_SECONDS), predictions run in this pool so that health
        # checks are not queued behind them; every other model runs inline, where the hand-off and
        # the GIL hand-backs would cost more than they give (a predict mostly holds the GIL).
        self.predict_pool = predict_pool
        self.label_writer = label_writer
        # Inference and feedback (every POST) need the bearer token; health, readiness, metadata and
        # /metrics stay open for the kubelet's probes and Prometheus (docs/security.md).
        self.auth = auth
        # Shadow (spec.serving.rollout): a sample of the inference requests, after their answer is
        # computed, queued for the candidate; never awaited on the request path (serve/mirror.py).
        self.mirror = mirror
        # Compute probabilities for every prediction so collected rows carry them (live roc_auc).
        self.collect_proba = collect_proba and collector is not None and model is not None and model.has_proba
        self.shutting_down = False
        base = f"/v2/models/{model_name}"
        versioned = f"{base}/versions/{model_version}"
        # Exact paths of this server: one dict lookup routes a request.
        self._routes: dict[str, tuple[str, str, Callable[..., Awaitable[Any]]]] = {
            "/v2/health/live": ("GET", "health", self._live),
            "/v2/health/ready": ("GET", "health", self._ready),
            "/v2": ("GET", "metadata", self._server_metadata),
            base: ("GET", "metadata", self._model_metadata),
            versioned: ("GET", "metadata", self._model_metadata),
            f"{base}/ready": ("GET", "health", self._model_ready),
            f"{versioned}/ready": ("GET", "health", self._model_ready),
            f"{base}/infer": ("POST", "infer", self._infer),
            f"{versioned}/infer": ("POST", "infer", self._infer),
            "/predict": ("POST", "predict", self._predict),
        }
        if label_writer is not None:
            self._routes[f"{base}/feedback"] = ("POST", "feedback", self._feedback)

    @property
    def ready(self) -> bool:
        return self.model is not None and not self.shutting_down

    # --- ASGI ---------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.collector is not None:
                    self.collector.start()
                if self.label_writer is not None:
                    self.label_writer.start()
                if self.mirror is not None:
                    self.mirror.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.shutting_down = True
                if self.collector is not None:
                    self.collector.stop()
                if self.label_writer is not None:
                    self.label_writer.stop()
                if self.mirror is not None:
                    await self.mirror.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path: str = scope["path"]
        route_label = "unknown"
        extra_headers: list[tuple[bytes, bytes]] = []
        try:
            if path == "/metrics":
                route_label = "metrics"
                if scope["method"] not in ("GET", "HEAD"):
                    raise MethodNotAllowed("use GET for /metrics", "GET")
                await _respond(send, 200, self.metrics.exposition(), [(b"content-type", _METRICS_TYPE)])
                self.metrics.observe_request(route_label, 200, time.perf_counter() - started)
                return
            route = self._routes.get(path)
            if route is None:
                raise self._not_found(path)
            method, route_label, handler = route
            if scope["method"] != method and not (method == "GET" and scope["method"] == "HEAD"):
                raise MethodNotAllowed(f"use {method} for {path}", method)
            if method == "POST":
                if self.auth is not None:
                    self.auth.check(scope["headers"])  # before the body is read
                body = await self._read_body(scope, receive)
                status, payload, prediction_id = await handler(body, scope)
                if prediction_id is not None:
                    extra_headers.append((_PREDICTION_ID, prediction_id.encode()))
            else:
                status, payload = await handler()
        except ServeError as exc:
            status, payload = exc.status, orjson.dumps({"error": exc.message})
            if isinstance(exc, MethodNotAllowed):
                extra_headers.append((b"allow", exc.allow.encode()))
            elif isinstance(exc, Unauthorized):
                extra_headers.append((b"www-authenticate", CHALLENGE))
        except Exception:
            log.exception("unexpected error serving %s %s", scope.get("method"), path)
            status, payload = 500, b'{"error":"internal server error"}'
        await _respond(send, status, payload, _JSON_HEADERS + extra_headers if extra_headers else _JSON_HEADERS)
        self.metrics.observe_request(route_label, status, time.perf_counter() - started)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.limits.max_body_bytes
        content_type = b""
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise InvalidInput("invalid Content-Length") from None
                if declared > limit:
                    raise PayloadTooLarge(f"body of {declared} bytes is over the limit of {limit}")
            elif key == b"content-type":
                content_type = value
            elif key == _BINARY_EXTENSION:
                raise UnsupportedMediaType(
                    "the binary tensor data extension (Inference-Header-Content-Length) is not supported: "
                    "send the tensors' data as JSON"
                )
        # JSON only; a missing Content-Type is taken as JSON (several V2 clients send none).
        if content_type and not content_type.split(b";", 1)[0].strip().lower() == b"application/json":
            raise UnsupportedMediaType(
                f"Content-Type must be application/json, got {content_type.decode(errors='replace')!r}"
            )
        message = await receive()
        body: bytes = message.get("body", b"")
        if not message.get("more_body"):
            if len(body) > limit:
                raise PayloadTooLarge(f"body is over the limit of {limit} bytes")
            return body
        parts = [body]
        size = len(body)
        while message.get("more_body"):
            message = await receive()
            if message["type"] == "http.disconnect":
                raise InvalidInput("client disconnected while sending the body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body is over the limit of {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    def _not_found(self, path: str) -> ModelNotFound:
        parts = path.strip("/").split("/")
        if len(parts) >= 3 and parts[:2] == ["v2", "models"]:
            if parts[2] != self.model_name:
                return ModelNotFound(f"unknown model {parts[2]!r}; this server serves {self.model_name!r}")
            if len(parts) >= 5 and parts[3] == "versions" and parts[4] != self.model_version:
                return ModelNotFound(
                    f"unknown version {parts[4]!r} of model {self.model_name!r}; serving {self.model_version!r}"
                )
        return ModelNotFound(f"no route {path}")

    def _require_model(self) -> ServedModel:
        if self.model is None or self.shutting_down:
            raise NotReady("the model is not ready")
        return self.model

    # --- handlers -----------------------------------------------------------------------------------
    async def _live(self) -> tuple[int, bytes]:
        return 200, b'{"live":true}'

    async def _ready(self) -> tuple[int, bytes]:
        return (200, b'{"ready":true}') if self.ready else (503, b'{"error":"the model is not ready"}')

    async def _model_ready(self) -> tuple[int, bytes]:
        self._require_model()
        return 200, orjson.dumps({"name": self.model_name, "ready": True})

    async def _server_metadata(self) -> tuple[int, bytes]:
        return 200, orjson.dumps({"name": SERVER_NAME, "version": __version__, "extensions": []})

    async def _model_metadata(self) -> tuple[int, bytes]:
        return 200, orjson.dumps(protocol.model_metadata(self._require_model()))

    async def _infer(self, body: bytes, scope: Scope) -> tuple[int, bytes, str | None]:
        model = self._require_model()
        request = protocol.parse_v2(body, model, self.limits.max_batch_rows)
        request.id = request.id or _request_id(scope, self.ids)
        requested = protocol.PROBA_OUTPUT in request.outputs
        prediction = await self._run(model, request.batch, requested, request.id, len(body))
        self._mirror(f"/v2/models/{self.model_name}/infer", body, scope, prediction, request.id)
        if not requested:
            prediction.proba = None
        return 200, protocol.v2_response(model, request, prediction), request.id

    async def _predict(self, body: bytes, scope: Scope) -> tuple[int, bytes, str | None]:
        model = self._require_model()
        batch = protocol.parse_records(body, model, self.limits.max_batch_rows)
        request_id = _request_id(scope, self.ids)
        prediction = await self._run(model, batch, False, request_id, len(body))
        self._mirror("/predict", body, scope, prediction, request_id)
        return 200, protocol.records_response(prediction), request_id

    def _mirror(self, path: str, body: bytes, scope: Scope, prediction: Prediction, request_id: str) -> None:
        if self.mirror is None:
            return
        authorization = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        self.mirror.offer(Mirrored(path, body, authorization, prediction.labels, request_id))

    async def _feedback(self, body: bytes, scope: Scope) -> tuple[int, bytes, str | None]:
        assert self.label_writer is not None
        labels = feedback.parse(protocol.loads(body), self.ids)
        self.label_writer.offer(labels)
        return 202, orjson.dumps({"accepted": len(labels)}), None

    async def _run(
        self, model: ServedModel, batch: Batch, with_proba: bool, request_id: str, body_bytes: int
    ) -> Prediction:
        with_proba = with_proba or self.collect_proba
        try:
            if self.predict_pool is None:
                prediction = model.predict(batch, with_proba)
            else:
                loop = asyncio.get_running_loop()
                prediction = await loop.run_in_executor(self.predict_pool, model.predict, batch, with_proba)
        except (ValueError, TypeError) as exc:
            # Validated input the model still refuses (e.g. NaN without an imputer, an unseen
            # category without handle_unknown): the client's data, so a 400 with sklearn's reason.
            raise InvalidInput(f"the model rejected the input: {exc}") from None
        self.metrics.observe_batch(batch.rows)
        if self.collector is not None:
            self.collector.offer(batch, prediction.labels, request_id, prediction.proba, body_bytes)
        return prediction


def _request_id(scope: Scope, issuer: ids.Issuer) -> str:
    """The client's X-Request-Id (checked), else a new id."""
    for key, value in scope["headers"]:
        if key == _REQUEST_ID:
            return ids.checked(value.decode("latin-1"), "the X-Request-Id header")
    return issuer.new_id()


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
