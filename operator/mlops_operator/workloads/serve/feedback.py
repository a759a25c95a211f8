"""Ground-truth labels posted to `POST /v2/models/{name}/feedback`, written off the request path.

A request is `{"labels": [{"id": "<prediction id>", "label": <number|string|bool>}, ...]}`: at most
`MAX_LABELS` items, each id as ids.valid() allows, each label a JSON number, string (at most
`MAX_LABEL_CHARS` characters) or boolean. One bad item refuses the request (400, naming it), so a
client never has to work out which of its labels were kept.

Accepted labels go to an in-memory buffer bounded in bytes (a full buffer refuses the request with
503, counted, so the client retries instead of losing labels); a background thread writes them every
`flush_interval` seconds, and once more on shutdown, as Parquet under contracts.labels_prefix():
<prefix>/date=YYYY-MM-DD/<utc-stamp>-<pid>-<random>.parquet with contracts.LABEL_ID_COLUMN,
LABEL_VALUE_COLUMN (text: live quality reads labels as text or numbers alike) and LABEL_TIME_COLUMN.
Like the collector's, each file is written under a dot-name and renamed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import pyarrow as pa

from mlops_operator import contracts
from mlops_operator.workloads.serve import ids
from mlops_operator.workloads.serve.collector import BackgroundFlush, write_part
from mlops_operator.workloads.serve.errors import InvalidInput, NotReady, PayloadTooLarge

log = logging.getLogger(__name__)

MAX_LABELS: Final = 10_000
MAX_LABEL_CHARS: Final = 1024
# What one buffered label costs beyond its two strings (the tuple, the list slot, the timestamp).
_OVERHEAD_BYTES: Final = 96


def labels_uri(collect_uri: str | None, model_name: str) -> str | None:
    """The labels prefix next to a collect prefix built by contracts.collected_prefix():
    <root>/<ns>/collected/<model> → <root>/<ns>/labels/<model>; None when it is not of that form."""
    if not collect_uri:
        return None
    head, sep, tail = collect_uri.rstrip("/").rpartition("/collected/")
    if not sep or tail != model_name:
        return None
    return f"{head}/labels/{model_name}"


def parse(doc: Any, issuer: ids.Issuer) -> list[tuple[str, str]]:
    """The (id, label text) pairs of a feedback request; InvalidInput for any client mistake,
    including an id in the servers' own form that no server of this model issued."""
    if not isinstance(doc, dict) or not isinstance(doc.get("labels"), list):
        raise InvalidInput("a feedback request must be a JSON object with a list 'labels'")
    items = doc["labels"]
    if not items:
        raise InvalidInput("'labels' is empty")
    if len(items) > MAX_LABELS:
        raise PayloadTooLarge(f"{len(items)} labels are over the limit of {MAX_LABELS} per request")
    return [_item(item, i, issuer) for i, item in enumerate(items)]


def _item(item: Any, i: int, issuer: ids.Issuer) -> tuple[str, str]:
    if not isinstance(item, dict) or "id" not in item or "label" not in item:
        raise InvalidInput(f"labels[{i}] must be an object with 'id' and 'label'")
    id_ = ids.checked(item["id"], f"labels[{i}].id")
    if issuer.foreign(id_):
        raise InvalidInput(
            f"labels[{i}].id {id_!r} is an unknown prediction id: no server of this model issued it "
            "(mistyped, cut short, or from another model)"
        )
    label = item["label"]
    if isinstance(label, bool):
        return id_, "true" if label else "false"
    if isinstance(label, int):
        return id_, str(label)
    if isinstance(label, float) and math.isfinite(label):
        return id_, repr(label)
    if isinstance(label, str) and 0 < len(label) <= MAX_LABEL_CHARS:
        return id_, label
    raise InvalidInput(
        f"labels[{i}].label must be a finite number, a boolean or a string of 1-{MAX_LABEL_CHARS} characters"
    )


@dataclass(frozen=True)
class LabelSettings:
    uri: str
    flush_interval: float = 60.0
    max_buffer_bytes: int = 64 * 1024 * 1024


class LabelWriter(BackgroundFlush):
    def __init__(
        self,
        settings: LabelSettings,
        on_written: Callable[[int], None] = lambda n: None,
        on_dropped: Callable[[str, int], None] = lambda reason, n: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__("labels-flush", settings.flush_interval)
        self.settings = settings
        self._on_written = on_written
        self._on_dropped = on_dropped
        self._clock = clock
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pending: list[tuple[float, list[tuple[str, str]]]] = []
        self._bytes = 0

    def offer(self, labels: list[tuple[str, str]]) -> None:
        """Buffer one request's labels; NotReady (503) when the buffer cannot hold them."""
        size = sum(len(i) + len(v) + _OVERHEAD_BYTES for i, v in labels)
        with self._lock:
            full = self._bytes + size > self.settings.max_buffer_bytes
            if not full:
                self._pending.append((self._clock(), labels))
                self._bytes += size
        if full:
            self._on_dropped("buffer_full", len(labels))
            raise NotReady("the label buffer is full; retry later")

    def flush(self) -> int:
        """Write everything buffered, one file per UTC day; returns labels written."""
        with self._write_lock:
            with self._lock:
                pending, self._pending, self._bytes = self._pending, [], 0
            by_day: dict[str, list[tuple[float, list[tuple[str, str]]]]] = {}
            for ts, labels in pending:
                by_day.setdefault(f"{datetime.fromtimestamp(ts, UTC):%Y-%m-%d}", []).append((ts, labels))
            written = 0
            for day, group in by_day.items():
                n = sum(len(labels) for _, labels in group)
                try:
                    self._write(day, _table(group))
                except Exception as exc:  # a store failure costs these labels (counted), never the server
                    self._on_dropped("store_error", n)
                    log.warning("labels: dropped %d labels, store write failed: %s", n, exc)
                    continue
                written += n
                self._on_written(n)
            return written

    def _write(self, day: str, table: pa.Table) -> None:
        write_part(self.settings.uri, f"date={day}", table)

def _table(group: list[tuple[float, list[tuple[str, str]]]]) -> pa.Table:
    id_list = [i for _, labels in group for i, _ in labels]
    values = [v for _, labels in group for _, v in labels]
    stamps = [int(ts * 1_000_000) for ts, labels in group for _ in labels]
    return pa.table(
        {
            contracts.LABEL_ID_COLUMN: pa.array(id_list, pa.string()),
            contracts.LABEL_VALUE_COLUMN: pa.array(values, pa.string()),
            contracts.LABEL_TIME_COLUMN: pa.array(stamps, pa.timestamp("us", tz="UTC")),
        }
    )


__all__ = ["MAX_LABELS", "LabelSettings", "LabelWriter", "labels_uri", "parse"]
