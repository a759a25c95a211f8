from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from mlops_operator.runner import configure_logging


@pytest.fixture
def operator_log() -> Iterator[io.StringIO]:
    root, ours = logging.getLogger(), logging.getLogger("mlops_operator")
    saved_handlers, saved_level, saved_ours = root.handlers[:], root.level, ours.level
    aio = logging.getLogger("asyncio")
    saved_aio = aio.handlers[:], aio.propagate  # kopf.configure silences asyncio
    configure_logging(verbose=False, quiet=False)
    stream = io.StringIO()
    for handler in root.handlers:
        if type(handler).__name__ == "_KopfStreamHandler":
            handler.setStream(stream)  # type: ignore[attr-defined]
    yield stream
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    ours.setLevel(saved_ours)  # a later in-process workload run sets its own level on the root
    aio.handlers[:], aio.propagate = saved_aio


def test_a_retried_api_request_is_a_warning_and_a_given_up_one_stays_an_error(operator_log: io.StringIO) -> None:
    # the messages kopf._cogs.clients.api.request logs, on the logger it logs them on
    api = logging.getLogger("kopf._cogs.clients.watching")
    what = "GET https://10.96.0.1:443/apis/mlops.dev/v1alpha1/namespaces/demo/models"
    api.error(
        f"Request attempt #1/9 failed; will retry: {what} -> APITooManyRequestsError('storage is (re)initializing')"
    )
    api.error(f"Request attempt #9/9 failed; escalating: {what} -> APIServerError('boom')")
    logging.getLogger("mlops_operator.reconcilers").error("a real failure; will retry: not kopf's")

    lines = operator_log.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert "[WARNING" in lines[0] and "will retry" in lines[0]
    assert "[ERROR" in lines[1] and "escalating" in lines[1]
    assert "[ERROR" in lines[2]
