"""`mlops-operator run --log-format=json`: one JSON object a line (message, severity, timestamp)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from mlops_operator.runner import configure_logging, parser


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    root, ours, aio = logging.getLogger(), logging.getLogger("mlops_operator"), logging.getLogger("asyncio")
    saved = root.handlers[:], root.level, ours.level, aio.handlers[:], aio.propagate
    configure_logging(verbose=False, quiet=False, log_format="json")
    stream = io.StringIO()
    for handler in root.handlers:
        if type(handler).__name__ == "_KopfStreamHandler":
            handler.setStream(stream)  # type: ignore[attr-defined]
    yield stream
    root.handlers[:], level, ours_level, aio.handlers[:], aio.propagate = saved
    root.setLevel(level)
    ours.setLevel(ours_level)


def test_json_lines_carry_level_logger_and_message_and_the_retry_filter_still_applies(json_log: io.StringIO) -> None:
    logging.getLogger("mlops_operator.reconcilers").info("reconciled %s", "team-a/clf")
    logging.getLogger("kopf._cogs.clients.watching").error("Request attempt #1/9 failed; will retry: GET /x")
    first, second = (json.loads(line) for line in json_log.getvalue().splitlines())
    assert first["message"] == "reconciled team-a/clf" and first["severity"] == "info"
    assert "timestamp" in first
    assert second["severity"] == "warn"  # retried requests are warnings in JSON too


def test_the_flag_takes_text_or_json_only() -> None:
    assert parser().parse_args(["--log-format", "json"]).log_format == "json"
    assert parser().parse_args([]).log_format == "text"
    with pytest.raises(SystemExit):
        parser().parse_args(["--log-format", "yaml"])
