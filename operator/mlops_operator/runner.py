"""`mlops-operator run`: the operator process (kopf) with our handlers, liveness and metrics."""

from __future__ import annotations

import argparse
import asyncio
import asyncio.sslproto
import contextlib
import ctypes
import ctypes.util
import logging
import threading
from collections.abc import Callable, Sequence

import kopf

from mlops_operator.handlers import build_handler_registry
from mlops_operator.metrics import Metrics
from mlops_operator.settings import Settings


class RetriedRequestsAreWarnings(logging.Filter):
    """Log kopf's failed-but-retried API requests at WARNING, not ERROR.

    kopf logs every attempt it will retry (a 429 while a CRD's watch cache initialises, a 503
    during an apiserver restart) at ERROR. Those heal by themselves, and ERROR in an operator's
    log should page someone; the attempt that gives up ("escalating") stays an ERROR.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno == logging.ERROR
            and record.name.startswith("kopf.")
            and "failed; will retry:" in record.getMessage()
        ):
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        return True


LOG_FORMATS = {"text": kopf.LogFormat.FULL, "json": kopf.LogFormat.JSON}

# asyncio gives every TLS connection a 256 KiB read buffer, touched at once. kopf keeps one watch
# connection per watched kind and namespace (a dozen kinds: 120 connections for 10 namespaces), so
# these buffers alone were 30 MiB of the operator's memory in the scale benchmark. A watch event or
# a list page arrives in TLS records of at most 16 KiB; 32 KiB reads lose nothing measurable and hold
# 1/8 of the memory.
TLS_READ_BUFFER = 32 * 1024


def limit_tls_read_buffers(size: int = TLS_READ_BUFFER) -> None:
    """Smaller TLS read buffers for the asyncio connections (kopf's watches) of this process."""
    if getattr(asyncio.sslproto.SSLProtocol, "max_size", 0) > size:
        asyncio.sslproto.SSLProtocol.max_size = size


# The API requests run in worker threads, and glibc gives each thread its own malloc arena. Memory
# freed there (a parsed list page, a watch burst) stays in the arena, counted in the process's RSS,
# until something returns it; the next bursts reuse it only in part. malloc_trim(0) gives the free
# pages of every arena back to the kernel.
HEAP_TRIM_SECONDS = 60.0


def heap_trimmer() -> Callable[[], object] | None:
    """glibc's malloc_trim(0), or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: trim(0)


async def trim_heap_forever(interval: float = HEAP_TRIM_SECONDS) -> None:
    """Give the allocator's free pages back to the kernel every `interval` seconds."""
    trim = heap_trimmer()
    if trim is None:
        return
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(trim)  # ctypes drops the GIL; a few ms off the event loop


def configure_logging(*, verbose: bool, quiet: bool, log_format: str = "text") -> None:
    """kopf's logging (text, or one JSON object a line with the object's reference under `object`)."""
    kopf.configure(verbose=verbose, quiet=quiet, log_format=LOG_FORMATS[log_format], log_refkey="object")
    for handler in logging.getLogger().handlers:
        # on the handlers: a logger's own filters never see records propagated from its children
        handler.addFilter(RetriedRequestsAreWarnings())
    logging.getLogger("mlops_operator").setLevel(logging.DEBUG if verbose else logging.INFO)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlops-operator run", description="Run the mlops-operator controller (kopf).")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (the default)")
    p.add_argument(
        "--liveness",
        default=None,
        help="liveness endpoint, default http://0.0.0.0:<MLOPS_LIVENESS_PORT>/healthz",
    )
    p.add_argument("--no-liveness", action="store_true", help="do not serve a liveness endpoint")
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="Prometheus port (0 disables); default MLOPS_METRICS_PORT",
    )
    p.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: in-cluster, then KUBECONFIG)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--log-format", choices=sorted(LOG_FORMATS), default="text", help="text (default) or json")
    return p


async def run(
    settings: Settings,
    *,
    liveness: str | None,
    kubeconfig: str | None = None,
    metrics: Metrics | None = None,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
) -> None:
    """Run until stopped. Namespaces come from settings (none: cluster-wide)."""
    limit_tls_read_buffers()
    memo = kopf.Memo(settings=settings, kubeconfig=kubeconfig, metrics=metrics or Metrics())
    trimmer = asyncio.create_task(trim_heap_forever())
    try:
        await kopf.operator(
            registry=build_handler_registry(admission_webhook=bool(settings.admission_port)),
            clusterwide=not settings.namespaces,
            namespaces=list(settings.namespaces),
            liveness_endpoint=liveness,
            standalone=True,
            memo=memo,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        trimmer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await trimmer


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(list(argv))
    settings = Settings.from_env()
    if args.namespace:
        settings = Settings(**{**settings.__dict__, "namespaces": tuple(args.namespace)})
    elif args.all_namespaces:
        settings = Settings(**{**settings.__dict__, "namespaces": ()})
    configure_logging(verbose=args.verbose, quiet=args.quiet, log_format=args.log_format)
    liveness = None if args.no_liveness else (args.liveness or f"http://0.0.0.0:{settings.liveness_port}/healthz")
    metrics = Metrics()
    port = settings.metrics_port if args.metrics_port is None else args.metrics_port
    if port:
        metrics.serve(port)
    try:
        asyncio.run(run(settings, liveness=liveness, kubeconfig=args.kubeconfig, metrics=metrics))
    except KeyboardInterrupt:
        return 130
    return 0
