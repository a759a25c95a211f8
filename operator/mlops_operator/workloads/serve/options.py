"""Command-line options of `mlops-operator serve` (flag names from contracts.ServeFlags)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from mlops_operator import contracts
from mlops_operator.contracts import ServeFlags


@dataclass(frozen=True)
class ServeOptions:
    model_name: str
    model_version: str
    artifact_uri: str
    sha256: str
    host: str
    port: int
    collect_uri: str | None
    sample_rate: float
    flush_interval: float
    flush_rows: int
    collect_buffer_rows: int
    collect_buffer_bytes: int
    collect_proba: str
    labels_uri: str | None
    workers: int
    predict_threads: int
    max_body_bytes: int
    max_batch_rows: int
    graceful_timeout: float
    header_timeout: float
    body_timeout: float
    max_header_bytes: int
    max_connections: int
    auth_token_file: str | None
    log_level: str
    shadow_url: str | None = None
    shadow_sample_percent: float = 100.0
    shadow_version: str | None = None
    shadow_max_abs_diff: float = 0.0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mlops-operator serve", description="Serve a model over the Open Inference Protocol V2."
    )
    p.add_argument(ServeFlags.MODEL_NAME, required=True)
    p.add_argument(ServeFlags.MODEL_VERSION, required=True)
    p.add_argument(ServeFlags.ARTIFACT_URI, required=True, help="skops artifact (file://, az://, s3://)")
    p.add_argument(ServeFlags.SHA256, required=True, help="expected sha256 of the artifact bytes")
    p.add_argument(ServeFlags.HOST, default="0.0.0.0")
    p.add_argument(ServeFlags.PORT, type=int, default=contracts.SERVER_PORT)
    _collection_arguments(p)
    _limit_arguments(p)
    p.add_argument(
        "--auth-token-file",
        default=None,
        help="require Authorization: Bearer <the file's content> on inference and feedback (re-read on change)",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    _shadow_arguments(p)
    return p


def _collection_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(ServeFlags.COLLECT_URI, default=None, help="collect scoring rows under this prefix (off if unset)")
    p.add_argument(ServeFlags.SAMPLE_RATE, type=_rate, default=1.0, help="fraction of requests collected")
    p.add_argument(ServeFlags.FLUSH_INTERVAL, type=_positive_float, default=60.0, help="seconds between flushes")
    p.add_argument(ServeFlags.FLUSH_ROWS, type=_positive_int, default=10_000, help="flush once this many rows wait")
    p.add_argument("--collect-buffer-rows", type=_positive_int, default=200_000, help="drop rows beyond this")
    p.add_argument(
        "--collect-buffer-bytes", type=_positive_int, default=256 * 1024 * 1024, help="drop rows beyond this size"
    )
    p.add_argument(
        "--collect-proba",
        choices=["auto", "on", "off"],
        default="off",
        help="store each collected row's class probabilities (live roc_auc): on for every classifier with "
        "predict_proba, auto for binary ones; off by default, since it costs ~50%% more model time per request",
    )
    p.add_argument(
        "--labels-uri",
        default=None,
        help="write feedback labels under this prefix (default: the labels prefix next to --collect-uri)",
    )


def _percent(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 100.0:
        raise argparse.ArgumentTypeError(f"must be within (0, 100], got {text}")
    return value


def _shadow_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shadow-url", default=None, help="mirror sampled inference requests to this http:// server")
    p.add_argument("--shadow-sample-percent", type=_percent, default=100.0, help="share of requests mirrored")
    p.add_argument("--shadow-version", default=None, help="the mirrored candidate's version (informational)")
    p.add_argument("--shadow-max-abs-diff", type=float, default=0.0, help="a regressor's rows agree within this")


def _limit_arguments(p: argparse.ArgumentParser) -> None:
    """Processes, threads, and what one client may cost: sizes, deadlines, connections."""
    p.add_argument(ServeFlags.WORKERS, type=_positive_int, default=1, help="server processes on the port")
    p.add_argument(
        "--predict-threads",
        type=int,
        default=-1,
        help="threads for predictions; 0 = inline on the event loop; -1 (default) = one thread only "
        "when a one-row prediction takes over 10 ms",
    )
    p.add_argument("--max-body-bytes", type=_positive_int, default=8 * 1024 * 1024)
    p.add_argument("--max-batch-rows", type=_positive_int, default=10_000)
    p.add_argument(
        "--graceful-timeout", type=_positive_float, default=25.0, help="seconds to finish in-flight requests"
    )
    p.add_argument(
        "--header-timeout",
        type=_positive_float,
        default=10.0,
        help="seconds for a request's headers to arrive (slow or idle clients get 408 and are closed)",
    )
    p.add_argument("--body-timeout", type=_positive_float, default=60.0, help="seconds for a request's body to arrive")
    p.add_argument(
        "--max-header-bytes",
        type=_positive_int,
        default=32 * 1024,
        help="bytes of a request line and headers; beyond it 431 and the connection is closed",
    )
    p.add_argument(
        "--max-connections",
        type=_positive_int,
        default=1024,
        help="open connections and requests per worker; beyond it requests get 503",
    )


def parse(argv: Sequence[str]) -> ServeOptions:
    ns = parser().parse_args(list(argv))
    return ServeOptions(**vars(ns))
