"""The training Job of a labels-only retrain (spec.retrain.productionLabels), compared with its golden YAML."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops_operator.api.plans import ChampionRef
from mlops_operator.builders import jobs
from tests.unit import factories as f
from tests.unit.builders.test_golden import training_job

Golden = Callable[[str, Any], None]
NOW = datetime(2026, 1, 2, 3, 0, 0, tzinfo=UTC)


def test_training_job_with_production_labels(golden: Golden) -> None:
    model = f.model(retrain={"productionLabels": {"enabled": True, "windowSeconds": 3 * 86400, "maxRows": 50000}})
    champion = ChampionRef(
        version=3, artifact_uri="file:///var/lib/mlops/team-a/models/iris-clf/v3/model.skops", sha256="a" * 64
    )
    production = jobs.production_rows_plan(
        model, f.SETTINGS, now=NOW, new_since=NOW - timedelta(days=1), require_new=True
    )
    job = training_job(
        model,
        champion,
        retrain_request="2026-01-02T02:59:00Z;quality: x",
        trigger="retrain: quality: x (new production labels)",
        production=production,
    )
    golden("training-job-production-labels", job)
