"""Run the app under uvicorn (uvloop + httptools), in one process or several sharing one socket.

With `--workers N` the parent binds the socket, loads the model once, and forks N workers that
inherit both (copy-on-write, so the model's memory is shared). SIGTERM/SIGINT are forwarded; each
worker's uvicorn stops accepting, finishes in-flight requests, and flushes its collector in the
lifespan shutdown. If one worker dies, the parent stops the others and exits non-zero.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from types import FrameType

import uvicorn

from mlops_operator.workloads.serve.app import Limits, ServeApp
from mlops_operator.workloads.serve.auth import TokenCheck
from mlops_operator.workloads.serve.collector import Collector, CollectorSettings
from mlops_operator.workloads.serve.deadlines import deadline_protocol
from mlops_operator.workloads.serve.feedback import LabelSettings, LabelWriter, labels_uri
from mlops_operator.workloads.serve.metrics import ServeMetrics
from mlops_operator.workloads.serve.mirror import (
    Mirror,
    MirrorSettings,
    RecorderSettings,
    ShadowMetrics,
    ShadowRecorder,
    shadow_uri,
)
from mlops_operator.workloads.serve.model import ServedModel
from mlops_operator.workloads.serve.options import ServeOptions

log = logging.getLogger("mlops_operator.serve")
# A one-row prediction slower than this runs in one thread off the event loop, so health checks
# are not queued behind it. Below it, inline: a scikit-learn predict holds the GIL for most of its
# time, and predictions in a pool of threads served a 100-tree forest at 0.4-0.65x inline (issue 13).
MODEL_BOUND_SECONDS = 0.01


def build_app(options: ServeOptions, model: ServedModel | None) -> ServeApp:
    metrics = ServeMetrics()
    collector = None
    if options.collect_uri and model is not None:
        collector = Collector(
            CollectorSettings(
                uri=options.collect_uri,
                sample_rate=options.sample_rate,
                flush_rows=options.flush_rows,
                flush_interval=options.flush_interval,
                max_buffer_rows=options.collect_buffer_rows,
                max_buffer_bytes=options.collect_buffer_bytes,
            ),
            model.features,
            options.model_version,
            on_written=metrics.collector_written.inc,
            on_dropped=lambda reason, n: metrics.collector_dropped.labels(reason).inc(n),
            on_truncated=metrics.collector_truncated.inc,
        )
    limits = Limits(max_body_bytes=options.max_body_bytes, max_batch_rows=options.max_batch_rows)
    pool = None
    threads = options.predict_threads
    if threads < 0 and model is not None:  # auto: a thread only for a model-bound estimator
        threads = 1 if model.seconds_per_call() >= MODEL_BOUND_SECONDS else 0
    if threads > 0:
        pool = ThreadPoolExecutor(threads, thread_name_prefix="predict")
    log.info("predictions run %s", f"in {threads} threads" if pool else "inline on the event loop")
    writer = _label_writer(options, metrics)
    return ServeApp(
        options.model_name,
        options.model_version,
        model,
        metrics,
        collector,
        limits,
        pool,
        label_writer=writer,
        collect_proba=_collect_proba(options, model),
        auth=TokenCheck(options.auth_token_file) if options.auth_token_file else None,
        mirror=_mirror(options, model, metrics),
    )


def _mirror(options: ServeOptions, model: ServedModel | None, metrics: ServeMetrics) -> Mirror | None:
    if not options.shadow_url or model is None:
        return None
    settings = MirrorSettings(
        url=options.shadow_url, sample_percent=options.shadow_sample_percent, max_abs_diff=options.shadow_max_abs_diff
    )
    log.info("mirroring %s%% of inference requests to %s", options.shadow_sample_percent, options.shadow_url)
    shadow_metrics = ShadowMetrics(metrics.registry)
    regression = model.classes is None
    recorder = None
    uri = shadow_uri(options.collect_uri, options.model_name)
    if uri is not None:  # collecting: the candidate's answers are kept by id, to be scored with the labels
        recorder = ShadowRecorder(
            RecorderSettings(
                uri=uri,
                candidate_version=options.shadow_version or "",
                champion_version=options.model_version,
                regression=regression,
                flush_rows=options.flush_rows,
                flush_interval=options.flush_interval,
            ),
            on_written=shadow_metrics.recorded_rows.inc,
            on_dropped=shadow_metrics.unrecorded_rows.inc,
        )
    return Mirror(settings, shadow_metrics, regression=regression, recorder=recorder)


def _label_writer(options: ServeOptions, metrics: ServeMetrics) -> LabelWriter | None:
    uri = options.labels_uri or labels_uri(options.collect_uri, options.model_name)
    if uri is None:
        return None
    return LabelWriter(
        LabelSettings(uri=uri, flush_interval=options.flush_interval),
        on_written=metrics.labels_written.inc,
        on_dropped=lambda reason, n: metrics.labels_dropped.labels(reason).inc(n),
    )


def _collect_proba(options: ServeOptions, model: ServedModel | None) -> bool:
    """Whether predictions compute probabilities for the collected rows (see --collect-proba)."""
    if options.collect_proba == "off" or model is None or not model.has_proba:
        return False
    return options.collect_proba == "on" or (model.classes is not None and len(model.classes) == 2)


def uvicorn_config(app: ServeApp, options: ServeOptions) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        loop="uvloop",
        http=deadline_protocol(options.header_timeout, options.body_timeout, options.max_header_bytes),
        ws="none",  # no WebSocket upgrades: an `Upgrade: websocket` request is an ordinary request
        limit_concurrency=options.max_connections,
        lifespan="on",
        access_log=False,
        server_header=False,
        log_level=options.log_level,
        timeout_graceful_shutdown=round(options.graceful_timeout),
        timeout_keep_alive=5,
    )


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_socket(options: ServeOptions, model: ServedModel, sock: socket.socket) -> int:
    server = uvicorn.Server(uvicorn_config(build_app(options, model), options))
    # uvicorn re-raises the signal it stopped on once it is done, under the handlers that were
    # installed before it: make those no-ops so a graceful stop exits 0, not -SIGTERM.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    server.run(sockets=[sock])
    return 0 if server.started else 1


def run(options: ServeOptions, model: ServedModel) -> int:
    try:
        sock = bind(options.host, options.port)
    except OSError as exc:
        print(f"mlops-operator serve: cannot listen on {options.host}:{options.port}: {exc}", file=sys.stderr)
        return 1
    log.info("listening on %s:%d with %d worker(s)", options.host, options.port, options.workers)
    if options.workers == 1:
        return serve_socket(options, model, sock)
    return _supervise(options, model, sock)


def _supervise(options: ServeOptions, model: ServedModel, sock: socket.socket) -> int:
    children: list[int] = []
    for _ in range(options.workers):
        pid = os.fork()
        if pid == 0:  # worker: serve until told to stop, never return into the parent's code
            code = 1
            try:
                code = serve_socket(options, model, sock)
            finally:
                os._exit(code)
        children.append(pid)
    sock.close()

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    worst = 0
    remaining = set(children)
    while remaining:
        pid, status = os.wait()
        if pid not in remaining:
            continue
        remaining.discard(pid)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            worst = worst or (code if code > 0 else 1)
            log.error("worker %d exited with %d; stopping the others", pid, code)
            forward(signal.SIGTERM, None)
    return worst
