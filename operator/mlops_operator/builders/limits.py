"""Resource limits of workload containers, and the ceilings an administrator sets on specs.

Pure: typed spec + Settings in, values and messages out; no I/O, no clock.

- `container_limits`: every workload container gets cpu and memory limits, whatever its spec says,
  and a limit for every extended resource it requests.
- `exceeds_ceilings`: what in a spec goes beyond the operator's ceilings (MLOPS_MAX_*), in words, for
  the reconcilers to refuse the spec with (an empty list: within every ceiling).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Final

from mlops_operator.api.base import OVERCOMMITTABLE, Resources
from mlops_operator.api.v1alpha1.batchscoring import BatchScoringSpec
from mlops_operator.api.v1alpha1.dataset import DatasetSpec
from mlops_operator.api.v1alpha1.driftmonitor import DriftMonitorSpec
from mlops_operator.api.v1alpha1.model import ModelSpec, ParamValue
from mlops_operator.settings import Settings, parse_quantity

RESOURCE_KEYS = ("cpu", "memory")
LEGACY_DEFAULT_LIMITS: Final = {"cpu": "1", "memory": "1Gi"}
Spec = DatasetSpec | ModelSpec | DriftMonitorSpec | BatchScoringSpec


def container_limits(spec: Resources, settings: Settings) -> dict[str, str]:
    """Every limit the spec gives, and cpu and memory limits always.

    A missing cpu or memory limit (no `limits`, `limits: {}`, or one key only) is the operator's
    default (MLOPS_DEFAULT_LIMIT_CPU/MEMORY), raised to the request when the request is higher: the
    API server refuses a container whose requests exceed its limits. Hugepages and extended
    resources (nvidia.com/gpu) cannot be overcommitted: one requested without a limit gets the
    request as its limit, which the API server insists on.
    """
    given = dict(spec.limits or {})
    defaults = {"cpu": settings.default_limit_cpu, "memory": settings.default_limit_memory}
    out: dict[str, str] = {}
    for key in RESOURCE_KEYS:
        value = given.get(key) or defaults[key]
        request = spec.requests.get(key)
        if key not in given and request and parse_quantity(request) > parse_quantity(value):
            value = request
        out[key] = value
    out |= {name: value for name, value in given.items() if name not in RESOURCE_KEYS}
    for name, request in spec.requests.items():
        if name not in OVERCOMMITTABLE:
            out.setdefault(name, request)
    return out


def hashable_resources(resources: dict[str, Any]) -> dict[str, Any]:
    """A dumped `resources` as spec hashes saw it while the schema defaulted limits to
    {cpu: 1, memory: 1Gi}: a spec without limits keeps the hash (and so the Job name) it had, and an
    upgrade starts no training or profiling of its own."""
    return resources if "limits" in resources else {**resources, "limits": dict(LEGACY_DEFAULT_LIMITS)}


def exceeds_ceilings(spec: Spec, settings: Settings) -> list[str]:
    """Every way `spec` goes beyond the ceilings in `settings`, as sentences naming the field (in the
    spec's own camelCase path), the value, the ceiling and the setting that holds it."""
    if isinstance(spec, ModelSpec):
        return [
            *_resources("trainer.resources", spec.trainer.resources, settings),
            *_resources("serving.resources", spec.serving.resources, settings),
            *_model_counts(spec, settings),
            *_params(spec.trainer.params, settings),
        ]
    if isinstance(spec, BatchScoringSpec):
        return [*_resources("resources", spec.resources, settings), *_batch_counts(spec, settings)]
    return list(_resources("resources", spec.resources, settings))


def _resources(path: str, resources: Resources, settings: Settings) -> Iterator[str]:
    ceilings = {"cpu": (settings.max_cpu, "MLOPS_MAX_CPU"), "memory": (settings.max_memory, "MLOPS_MAX_MEMORY")}
    for section, values in (("requests", resources.requests), ("limits", resources.limits or {})):
        for key in RESOURCE_KEYS:
            value = values.get(key)
            ceiling, setting = ceilings[key]
            if value and parse_quantity(value) > parse_quantity(ceiling):
                yield f"{path}.{section}.{key} {value} exceeds the ceiling {ceiling} ({setting})"


def _model_counts(spec: ModelSpec, settings: Settings) -> Iterator[str]:
    deadline = spec.trainer.active_deadline_seconds
    if deadline > settings.max_deadline_seconds:
        yield (
            f"trainer.activeDeadlineSeconds {deadline} exceeds the ceiling {settings.max_deadline_seconds}"
            " (MLOPS_MAX_DEADLINE_SECONDS)"
        )
    replicas = {"serving.replicas": spec.serving.replicas}
    if spec.serving.autoscaling is not None:
        replicas["serving.autoscaling.maxReplicas"] = spec.serving.autoscaling.max_replicas
    for path, count in replicas.items():
        if count > settings.max_replicas:
            yield f"{path} {count} exceeds the ceiling {settings.max_replicas} (MLOPS_MAX_REPLICAS)"


def _batch_counts(spec: BatchScoringSpec, settings: Settings) -> Iterator[str]:
    """A run's deadline, and its pods at once (parallelism, all shards by default) like serving replicas."""
    if spec.active_deadline_seconds > settings.max_deadline_seconds:
        yield (
            f"activeDeadlineSeconds {spec.active_deadline_seconds} exceeds the ceiling "
            f"{settings.max_deadline_seconds} (MLOPS_MAX_DEADLINE_SECONDS)"
        )
    pods = spec.parallelism or spec.shards
    if pods > settings.max_replicas:
        path = "parallelism" if spec.parallelism else "shards (without parallelism)"
        yield (
            f"{path} {pods} exceeds the ceiling of {settings.max_replicas} pods at once (MLOPS_MAX_REPLICAS): "
            "set parallelism to at most that; shards may stay higher"
        )


def _number(value: ParamValue) -> float | None:
    """A numeric hyperparameter's value; None for anything else (bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _params(params: dict[str, ParamValue], settings: Settings) -> Iterator[str]:
    ceilings = {
        "n_estimators": (settings.max_n_estimators, "MLOPS_MAX_N_ESTIMATORS"),
        "hidden_layer_sizes": (settings.max_hidden_layer_size, "MLOPS_MAX_HIDDEN_LAYER_SIZE"),
        "cache_size": (settings.max_cache_size_mb, "MLOPS_MAX_CACHE_SIZE_MB"),
    }
    for name, (ceiling, setting) in ceilings.items():
        value = _number(params.get(name))
        if value is not None and value > ceiling:
            yield f"trainer.params.{name} {params[name]} exceeds the ceiling {ceiling} ({setting})"
    n_jobs = _number(params.get("n_jobs"))
    if n_jobs is None:
        return
    cores = max(1, math.ceil(parse_quantity(settings.max_cpu)))
    if n_jobs < 0:
        yield (
            f"trainer.params.n_jobs {params['n_jobs']} is negative: it would start a worker per core of the"
            " node, not of the container's CPU limit; give a positive number"
        )
    elif n_jobs > cores:
        yield f"trainer.params.n_jobs {params['n_jobs']} exceeds the CPU ceiling of {cores} cores (MLOPS_MAX_CPU)"
