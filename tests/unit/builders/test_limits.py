"""Every workload container has cpu and memory limits; specs beyond the operator's ceilings are named."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_operator.api.base import Resources
from mlops_operator.builders import limits
from mlops_operator.settings import Settings
from tests.unit import factories as f
from tests.unit.builders import workloads as w

SETTINGS = Settings(default_limit_cpu="2", default_limit_memory="3Gi")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"limits": {}}, {"cpu": "2", "memory": "3Gi"}),
        ({"requests": {"cpu": "100m", "memory": "128Mi"}}, {"cpu": "2", "memory": "3Gi"}),
        ({"requests": {"cpu": "500m"}, "limits": {}}, {"cpu": "2", "memory": "3Gi"}),
        ({"limits": {"cpu": "250m"}}, {"cpu": "250m", "memory": "3Gi"}),
        ({"limits": {"memory": "512Mi"}}, {"cpu": "2", "memory": "512Mi"}),
        ({"limits": {"cpu": "4", "memory": "8Gi"}}, {"cpu": "4", "memory": "8Gi"}),
        # a request above the default raises the fallback limit to it (requests may not exceed limits)
        ({"requests": {"cpu": "3", "memory": "4Gi"}, "limits": {}}, {"cpu": "3", "memory": "4Gi"}),
        ({"requests": {"cpu": "2500m"}}, {"cpu": "2500m", "memory": "3Gi"}),
        ({}, {"cpu": "2", "memory": "3Gi"}),
    ],
)
def test_a_missing_limit_is_the_operators_default(spec: dict[str, Any], expected: dict[str, str]) -> None:
    assert limits.container_limits(Resources.model_validate(spec), SETTINGS) == expected


def test_the_default_limits_of_the_default_settings_are_the_apis_own() -> None:
    assert limits.container_limits(Resources(), Settings()) == {"cpu": "1", "memory": "1Gi"}


@pytest.mark.parametrize("role", w.ROLES)
@pytest.mark.parametrize(
    "resources",
    [{"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {}}, {"requests": {"cpu": "100m"}}, None],
    ids=["empty-limits", "requests-only", "no-resources"],
)
def test_every_workload_container_has_cpu_and_memory_limits(role: str, resources: dict[str, Any] | None) -> None:
    rendered = w.container(w.render(SETTINGS, resources)[role])["resources"]
    assert set(rendered["limits"]) == {"cpu", "memory"} and all(rendered["limits"].values())
    if role not in ("registry", "notify"):  # theirs are fixed by the builder
        assert rendered["limits"] == {"cpu": "2", "memory": "3Gi"}


@pytest.mark.parametrize("role", ["profile", "train", "train-custom-image", "serve", "drift"])
def test_a_spec_limit_is_kept_and_requests_are_rendered_as_given(role: str) -> None:
    resources = {"requests": {"cpu": "200m"}, "limits": {"memory": "2Gi"}}
    rendered = w.container(w.render(SETTINGS, resources)[role])["resources"]
    assert rendered == {"requests": {"cpu": "200m"}, "limits": {"cpu": "2", "memory": "2Gi"}}


# --- ceilings -----------------------------------------------------------------------------------
CEILINGS = Settings(max_cpu="4", max_memory="8Gi", max_replicas=5, max_deadline_seconds=7200, max_n_estimators=500)


def test_specs_within_every_ceiling_have_no_violations() -> None:
    assert limits.exceeds_ceilings(f.model().spec, CEILINGS) == []
    assert limits.exceeds_ceilings(f.dataset().spec, CEILINGS) == []
    assert limits.exceeds_ceilings(f.monitor().spec, CEILINGS) == []
    at_ceiling = f.model(
        trainer={
            "estimator": "sklearn.ensemble.RandomForestClassifier",
            "params": {"n_estimators": 500, "n_jobs": 4},
            "resources": {"requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"cpu": "4000m", "memory": "8192Mi"}},
            "activeDeadlineSeconds": 7200,
        },
        serving={"replicas": 5},
    )
    assert limits.exceeds_ceilings(at_ceiling.spec, CEILINGS) == []


def test_resources_above_the_ceilings_are_named_with_their_path_and_setting() -> None:
    big = {"requests": {"cpu": "5", "memory": "1Gi"}, "limits": {"cpu": "6", "memory": "9Gi"}}
    assert limits.exceeds_ceilings(f.dataset(resources=big).spec, CEILINGS) == [
        "resources.requests.cpu 5 exceeds the ceiling 4 (MLOPS_MAX_CPU)",
        "resources.limits.cpu 6 exceeds the ceiling 4 (MLOPS_MAX_CPU)",
        "resources.limits.memory 9Gi exceeds the ceiling 8Gi (MLOPS_MAX_MEMORY)",
    ]
    assert limits.exceeds_ceilings(f.monitor(resources={"limits": {"memory": "0.5Ti"}}).spec, CEILINGS) == [
        "resources.limits.memory 0.5Ti exceeds the ceiling 8Gi (MLOPS_MAX_MEMORY)"
    ]
    model = f.model(
        trainer={"estimator": "sklearn.linear_model.LogisticRegression", "resources": {"limits": {"cpu": "4001m"}}},
        serving={"resources": {"requests": {"memory": "10Gi"}}},
    )
    assert limits.exceeds_ceilings(model.spec, CEILINGS) == [
        "trainer.resources.limits.cpu 4001m exceeds the ceiling 4 (MLOPS_MAX_CPU)",
        "serving.resources.requests.memory 10Gi exceeds the ceiling 8Gi (MLOPS_MAX_MEMORY)",
    ]


def test_replicas_and_the_training_deadline_above_the_ceilings() -> None:
    model = f.model(
        trainer={"estimator": "sklearn.linear_model.LogisticRegression", "activeDeadlineSeconds": 7201},
        serving={"replicas": 6, "autoscaling": {"minReplicas": 2, "maxReplicas": 50}},
    )
    assert limits.exceeds_ceilings(model.spec, CEILINGS) == [
        "trainer.activeDeadlineSeconds 7201 exceeds the ceiling 7200 (MLOPS_MAX_DEADLINE_SECONDS)",
        "serving.replicas 6 exceeds the ceiling 5 (MLOPS_MAX_REPLICAS)",
        "serving.autoscaling.maxReplicas 50 exceeds the ceiling 5 (MLOPS_MAX_REPLICAS)",
    ]


def _params(**params: Any) -> list[str]:
    model = f.model(trainer={"estimator": "sklearn.neural_network.MLPClassifier", "params": params})
    return limits.exceeds_ceilings(model.spec, CEILINGS)


def test_estimator_parameters_above_the_ceilings() -> None:
    assert _params(n_estimators=501, hidden_layer_sizes=4096, cache_size=2048.5) == [
        "trainer.params.n_estimators 501 exceeds the ceiling 500 (MLOPS_MAX_N_ESTIMATORS)",
        "trainer.params.hidden_layer_sizes 4096 exceeds the ceiling 2048 (MLOPS_MAX_HIDDEN_LAYER_SIZE)",
        "trainer.params.cache_size 2048.5 exceeds the ceiling 2048 (MLOPS_MAX_CACHE_SIZE_MB)",
    ]
    assert _params(n_estimators=500, hidden_layer_sizes=2048, cache_size=200) == []


def test_n_jobs_is_never_negative_nor_above_the_cpu_ceiling() -> None:
    (negative,) = _params(n_jobs=-1)
    assert negative.startswith("trainer.params.n_jobs -1 is negative")
    assert _params(n_jobs=5) == ["trainer.params.n_jobs 5 exceeds the CPU ceiling of 4 cores (MLOPS_MAX_CPU)"]
    assert _params(n_jobs=4) == [] and _params(n_jobs=None) == []
    # not numbers: left to the estimator's own parameter checks
    assert _params(n_jobs=True, n_estimators="many") == []
    svc = f.model(trainer={"estimator": "sklearn.svm.SVC", "params": {"n_jobs": 3}})
    assert limits.exceeds_ceilings(svc.spec, Settings(max_cpu="2500m")) == []  # 2.5 cores: 3 workers
