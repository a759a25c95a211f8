"""What every workload shares: logging, the result it hands back, and the exit-code mapping.

A workload prints its result (a pydantic model from api.results) as one JSON line on stdout and writes
the same JSON to the Kubernetes termination-message file, trimmed to at most 4 KiB while staying valid
JSON. Logs go to stderr. A user's mistake (bad data, bad spec, a missing object) is one clear log line,
a result with ok=false and a CamelCase reason, and a reserved exit code; the traceback is logged only
at debug level. Anything unexpected is a bug: it keeps its traceback and exits 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from typing import TypeVar

import pydantic

from mlops_operator import contracts
from mlops_operator.api.base import CRModel
from mlops_operator.store import StoreError

log = logging.getLogger("mlops_operator.workloads")

ResultT = TypeVar("ResultT", bound=CRModel)
PlanT = TypeVar("PlanT", bound=CRModel)

INTERNAL_ERROR_EXIT = 1
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class WorkloadError(Exception):
    """A failure with a known cause: its exit code and reason reach the operator."""

    def __init__(self, exit_code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.reason = reason
        self.message = message


class DataError(WorkloadError):
    """The data is empty, malformed, lacks a column, or fails a quality rule. Retrying cannot help."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(contracts.ExitCode.DATA_ERROR, reason, message)


class SpecError(WorkloadError):
    """The plan asks for something invalid (estimator, hyperparameters, schema). Retrying cannot help."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(contracts.ExitCode.SPEC_ERROR, reason, message)


class IntegrityError(WorkloadError):
    """An artifact's sha256 does not match, or it holds types we do not trust."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(contracts.ExitCode.INTEGRITY_ERROR, reason, message)


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr, force=True)
    logging.captureWarnings(True)  # sklearn's ConvergenceWarning and friends become log lines


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="DEBUG also logs tracebacks of user errors",
    )


def plan_parser(command: str, doc: str | None, plan: type[CRModel]) -> argparse.ArgumentParser:
    """`mlops-operator <command> --spec '<plan JSON>' [--log-level LEVEL]`, the command line of every
    workload the operator starts with a plan (api/plans.py); a workload may add options of its own."""
    summary = (doc or "").strip().splitlines()
    parser = argparse.ArgumentParser(prog=f"mlops-operator {command}", description=summary[0] if summary else None)
    parser.add_argument(contracts.PLAN_FLAG, dest="spec", required=True, help=f"the {plan.__name__} as JSON")
    add_common_arguments(parser)
    return parser


def run_plan(
    command: str,
    args: argparse.Namespace,
    plan: type[PlanT],
    work: Callable[[PlanT], ResultT],
    failure: Callable[[WorkloadError], ResultT],
) -> int:
    """Set up logging as `args` asks, then run `work` on the plan in `args.spec`.

    The plan is parsed inside run_workload: an invalid one is a SpecError like any other, with a
    result and its exit code.
    """
    setup_logging(args.log_level)
    return run_workload(command, lambda: work(parse_plan(plan, args.spec)), failure)


def parse_plan(model: type[PlanT], raw: str) -> PlanT:
    """Parse a `--spec` JSON into its pydantic plan; a bad plan is a SpecError naming the fields."""
    try:
        return model.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise SpecError("InvalidSpec", f"invalid {model.__name__}: {problems}") from exc


def encode_result(result: CRModel, limit: int = contracts.TERMINATION_MESSAGE_LIMIT) -> bytes:
    """The result's JSON, shrunk to at most `limit` bytes and still valid JSON.

    Lists are shortened from the end first (findings are sorted most severe first), then long
    strings are cut. The trimmed object still validates as its model.
    """
    trimmed = result.model_copy(deep=True)
    encoded = _encode(trimmed)
    while len(encoded) > limit:
        if not _shrink(trimmed):
            return _encode(type(result).model_construct(ok=False, reason="ResultTooLarge"))[:limit]
        encoded = _encode(trimmed)
    return encoded


def _encode(result: CRModel) -> bytes:
    return result.model_dump_json(by_alias=True, exclude_none=True).encode()


def _shrink(result: CRModel) -> bool:
    longest_list = max(
        (v for v in vars(result).values() if isinstance(v, list) and v), key=len, default=None
    )
    if longest_list is not None:
        longest_list.pop()
        return True
    texts = [(k, v) for k, v in vars(result).items() if isinstance(v, str)]
    longest_name, longest_text = max(texts, key=lambda kv: len(kv[1]), default=("", ""))
    if len(longest_text) > 64:
        setattr(result, longest_name, longest_text[: len(longest_text) // 2] + "…")
        return True
    return False


def emit_result(result: CRModel) -> None:
    """Print the result on stdout and write it to the termination-message file (if writable)."""
    encoded = encode_result(result)
    sys.stdout.write(encoded.decode() + "\n")
    sys.stdout.flush()
    path = os.environ.get(contracts.ENV_TERMINATION_LOG, contracts.DEFAULT_TERMINATION_LOG)
    try:
        with open(path, "wb") as handle:
            handle.write(encoded)
    except OSError:
        log.debug("termination-message path %s is not writable; result printed only", path)


def run_workload(name: str, work: Callable[[], ResultT], failure: Callable[[WorkloadError], ResultT]) -> int:
    """Run `work`, emit its result, and map what it raises to a reserved exit code.

    `failure(error)` builds the ok=false result (same result model) from the error's reason and
    message; a subclass of WorkloadError may carry more (profile's quality findings).
    """
    try:
        result = work()
    except WorkloadError as exc:
        return _fail(name, failure, exc, exc)
    except StoreError as exc:
        store_error = WorkloadError(contracts.ExitCode.STORE_ERROR, exc.reason, exc.message)
        return _fail(name, failure, store_error, exc)
    except MemoryError as exc:
        memory_error = WorkloadError(INTERNAL_ERROR_EXIT, "OutOfMemory", "ran out of memory")
        return _fail(name, failure, memory_error, exc)
    except Exception as exc:  # a bug: keep the traceback, still hand back a result
        log.exception("%s failed unexpectedly", name)
        message = f"{type(exc).__name__}: {exc}"[:512]
        emit_result(failure(WorkloadError(INTERNAL_ERROR_EXIT, "InternalError", message)))
        return INTERNAL_ERROR_EXIT
    emit_result(result)
    return int(contracts.ExitCode.OK)


def _fail(
    name: str, failure: Callable[[WorkloadError], CRModel], error: WorkloadError, cause: BaseException
) -> int:
    log.error("%s failed: %s: %s", name, error.reason, error.message)
    log.debug("traceback of the %s failure", name, exc_info=cause)
    emit_result(failure(error))
    return int(error.exit_code)


__all__ = [
    "DataError",
    "IntegrityError",
    "SpecError",
    "WorkloadError",
    "add_common_arguments",
    "emit_result",
    "encode_result",
    "parse_plan",
    "plan_parser",
    "run_plan",
    "run_workload",
    "setup_logging",
]
