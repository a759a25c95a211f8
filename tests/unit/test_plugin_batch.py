"""`kubectl mlops status batchscorings`: the kind resolves by name and short name, and its table."""

from __future__ import annotations

from datetime import UTC, datetime

from mlops_operator.api.v1alpha1 import BatchScoring
from mlops_operator.plugin import resources, tables

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_batchscorings_resolve_by_plural_and_short_name() -> None:
    assert resources.resolve_kind("batchscorings") is BatchScoring
    assert resources.resolve_kind("bs") is BatchScoring


def test_the_table_shows_version_phase_rows_and_shards() -> None:
    body = {
        "metadata": {"name": "nightly", "namespace": "team-a", "creationTimestamp": "2026-01-02T03:00:05Z"},
        "spec": {"modelRef": {"name": "churn"}, "input": {"datasetRef": {"name": "customers"}}, "shards": 4},
        "status": {"phase": "Running", "version": 3, "rows": 500000, "shards": 4, "shardsSucceeded": 2},
    }
    table = tables.status_table(BatchScoring, [BatchScoring.model_validate(body)], NOW)
    assert table.headers == ("NAME", "MODEL", "VERSION", "PHASE", "ROWS", "SHARDS", "ROWS/S", "AGE")
    assert table.rows == [("nightly", "churn", 3, "Running", 500000, "2/4", None, "4m")]


def test_the_plugin_can_read_every_kind_the_api_declares() -> None:
    # `kubectl mlops status` lists ALL_KINDS: a kind missing here was a KeyError for every user
    from mlops_operator.api.v1alpha1 import ALL_KINDS
    from mlops_operator.plugin.cluster import KIND_OF

    assert set(KIND_OF) == set(ALL_KINDS)
