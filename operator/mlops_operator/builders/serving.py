"""The serving Deployment, Service, and optional HorizontalPodAutoscaler and PodDisruptionBudget of a Model.

Zero-downtime rollouts: maxUnavailable 0 / maxSurge 1 and a readiness probe on the model's own ready
endpoint, so traffic only moves to a pod that has loaded and verified its artifact. The pod template
carries the version (label and annotation), so a new version always rolls.
"""

from __future__ import annotations

import math
from typing import Any

from mlops_operator import contracts
from mlops_operator.api.v1alpha1.model import Model, ModelVersion
from mlops_operator.api.v1alpha1.pods import DisruptionBudget
from mlops_operator.builders import meta, pods
from mlops_operator.settings import Settings

SERVER_CONTAINER = "server"
PORT_NAME = "http"
SERVICE_PORT = 80


PRESTOP_SLEEP_SECONDS = 5
AUTH_VOLUME = "inference-token"
AUTH_DIR = "/var/run/mlops/inference-token"
AUTH_TOKEN_FILE = f"{AUTH_DIR}/token"
# Canary and Shadow (spec.serving.rollout): the candidate's Deployment and its pods carry this label;
# the stable server's pods carry none (adding one would roll every existing server on upgrade).
LABEL_TRACK = f"{contracts.GROUP}/track"
TRACK_CANARY = "canary"
TRACK_SHADOW = "shadow"
# A shadowed candidate must stay out of the Service: its pods' component is not `serve`.
SHADOW_COMPONENT = "serve-shadow"


def deployment_name(model: Model) -> str:
    return meta.child_name(model.name, "server")


def service_name(model: Model) -> str:
    return model.name


def selector(model: Model) -> dict[str, str]:
    return {contracts.LABEL_MODEL: model.name, contracts.LABEL_COMPONENT: str(contracts.Component.SERVE)}


def candidate_deployment_name(model: Model, track: str) -> str:
    """`<model>-server-canary` or `<model>-server-shadow`."""
    return meta.child_name(model.name, "server", track)


def candidate_selector(model: Model, track: str) -> dict[str, str]:
    """The Canary's pods match the Service's selector (they take their share of its traffic); the
    Shadow's do not (only the champion's mirror reaches them, through their own Service)."""
    if track == TRACK_CANARY:
        return {**selector(model), LABEL_TRACK: TRACK_CANARY}
    return {contracts.LABEL_MODEL: model.name, contracts.LABEL_COMPONENT: SHADOW_COMPONENT, LABEL_TRACK: track}


def server_args(model: Model, version: ModelVersion, settings: Settings, *, collect: bool = True) -> list[str]:
    if not version.artifact_uri or not version.sha256:
        raise ValueError(f"version {version.version} has no verified artifact to serve")
    args = [
        "serve",
        contracts.ServeFlags.MODEL_NAME,
        model.name,
        contracts.ServeFlags.MODEL_VERSION,
        str(version.version),
        contracts.ServeFlags.ARTIFACT_URI,
        version.artifact_uri,
        contracts.ServeFlags.SHA256,
        version.sha256,
        contracts.ServeFlags.HOST,
        "0.0.0.0",
        contracts.ServeFlags.PORT,
        str(contracts.SERVER_PORT),
    ]
    collection = model.spec.serving.collection
    if collection.enabled and collect:
        args += [
            contracts.ServeFlags.COLLECT_URI,
            contracts.collected_prefix(settings.store_uri, model.namespace, model.name),
            contracts.ServeFlags.SAMPLE_RATE,
            str(collection.sample_rate),
            contracts.ServeFlags.FLUSH_INTERVAL,
            str(collection.flush_interval_seconds),
            contracts.ServeFlags.FLUSH_ROWS,
            str(collection.flush_rows),
        ]
    if model.spec.serving.auth is not None:
        args += ["--auth-token-file", AUTH_TOKEN_FILE]
    return args


def _mount_token(pod_spec: dict[str, Any], container: dict[str, Any], model: Model) -> None:
    """The token Secret as a file (a directory mount, not subPath, so the kubelet's rotation reaches it)."""
    auth = model.spec.serving.auth
    if auth is None:
        return
    ref = auth.token_secret_ref
    secret = {"secretName": ref.name, "items": [{"key": ref.key, "path": "token"}], "defaultMode": 0o440}
    pod_spec.setdefault("volumes", []).append({"name": AUTH_VOLUME, "secret": secret})
    container.setdefault("volumeMounts", []).append({"name": AUTH_VOLUME, "mountPath": AUTH_DIR, "readOnly": True})


def deployment(
    model: Model,
    version: ModelVersion,
    settings: Settings,
    *,
    replicas: int | None = None,
    extra_args: list[str] | None = None,
) -> dict[str, Any]:
    """The stable server: the Service's pods (the champion during a Canary or Shadow rollout, with
    `replicas` for a Canary's split and `extra_args` for a Shadow's mirror)."""
    name, labels = deployment_name(model), selector(model)
    return _deployment(model, version, settings, name, labels, replicas=replicas, extra_args=extra_args)


def candidate_deployment(
    model: Model, version: ModelVersion, settings: Settings, track: str, replicas: int
) -> dict[str, Any]:
    """The candidate beside the champion: `track` canary (behind the Service) or shadow (not)."""
    labels = candidate_selector(model, track)
    name = candidate_deployment_name(model, track)
    # A shadow's requests are copies of ones the champion already collected: it collects nothing.
    collect = track != TRACK_SHADOW
    return _deployment(model, version, settings, name, labels, replicas=replicas, collect=collect)


def _deployment(
    model: Model,
    version: ModelVersion,
    settings: Settings,
    name: str,
    labels: dict[str, str],
    *,
    replicas: int | None = None,
    extra_args: list[str] | None = None,
    collect: bool = True,
) -> dict[str, Any]:
    serving = model.spec.serving
    version_labels = {contracts.LABEL_MODEL_VERSION: str(version.version)}
    metadata = meta.object_meta(
        name,
        model,
        contracts.Component.SERVE,
        extra_labels={k: v for k, v in labels.items() if k != contracts.LABEL_MODEL},
        annotations={contracts.ANNOTATION_SERVED_VERSION: str(version.version)},
    )
    args = server_args(model, version, settings, collect=collect) + (extra_args or [])
    container = pods.workload_container(SERVER_CONTAINER, args, settings, serving.resources)
    container["ports"] = [{"name": PORT_NAME, "containerPort": contracts.SERVER_PORT, "protocol": "TCP"}]
    container["readinessProbe"] = {
        "httpGet": {"path": f"/v2/models/{model.name}/ready", "port": PORT_NAME},
        "periodSeconds": 2,
        "failureThreshold": 3,
        "timeoutSeconds": 2,
    }
    container["livenessProbe"] = {
        "httpGet": {"path": "/v2/health/live", "port": PORT_NAME},
        "initialDelaySeconds": 5,
        "periodSeconds": 10,
        "failureThreshold": 6,
        "timeoutSeconds": 2,
    }
    # Keep serving while kube-proxy and endpoints catch up with the pod's removal; closing the socket
    # at once on SIGTERM drops requests routed to it meanwhile (zero-downtime rollouts need this).
    container["lifecycle"] = {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}}
    pod_labels = {**metadata["labels"], **version_labels, **pods.identity_labels(settings)}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "progressDeadlineSeconds": serving.progress_deadline_seconds,
        "revisionHistoryLimit": 3,
        "template": {
            "metadata": {
                "labels": pod_labels,
                "annotations": {contracts.ANNOTATION_SERVED_VERSION: str(version.version)},
            },
            "spec": pods.pod_spec(
                [container], settings, service_account=settings.serving_service_account, options=serving
            ),
        },
    }
    # With an HPA the replica count is the autoscaler's; writing it here would fight it on every apply.
    if replicas is not None:
        spec["replicas"] = replicas
    elif serving.autoscaling is None:
        spec["replicas"] = serving.replicas
    _mount_token(spec["template"]["spec"], container, model)
    spec["template"]["spec"]["terminationGracePeriodSeconds"] = 30
    return meta.with_spec_hash({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec})


def service(model: Model) -> dict[str, Any]:
    metadata = meta.object_meta(service_name(model), model, contracts.Component.SERVE)
    spec = {
        "type": "ClusterIP",
        "selector": selector(model),
        "ports": [{"name": PORT_NAME, "port": SERVICE_PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
    }
    return meta.with_spec_hash({"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec})


def hpa(model: Model) -> dict[str, Any] | None:
    autoscaling = model.spec.serving.autoscaling
    if autoscaling is None:
        return None
    metadata = meta.object_meta(deployment_name(model), model, contracts.Component.SERVE)
    spec = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment_name(model)},
        "minReplicas": autoscaling.min_replicas,
        "maxReplicas": autoscaling.max_replicas,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {
                        "type": "Utilization",
                        "averageUtilization": autoscaling.target_cpu_utilization,
                    },
                },
            }
        ],
    }
    return meta.with_spec_hash(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": metadata,
            "spec": spec,
        }
    )


def fewest_replicas(model: Model) -> int:
    """The fewest server pods that run: autoscaling.minReplicas with an autoscaler, else replicas."""
    serving = model.spec.serving
    return serving.autoscaling.min_replicas if serving.autoscaling is not None else serving.replicas


def evictable(budget: DisruptionBudget, replicas: int) -> int:
    """Server pods the budget lets go at once out of `replicas` (percentages round up, as in the
    disruption controller)."""

    def scaled(value: int | str) -> int:
        return value if isinstance(value, int) else math.ceil(int(value.rstrip("%")) * replicas / 100)

    if budget.min_available is not None:
        return max(0, replicas - scaled(budget.min_available))
    return min(replicas, scaled(budget.max_unavailable or 0))


def disruption_budget(model: Model) -> dict[str, Any] | None:
    """The server's PodDisruptionBudget; None when none is asked for, fewer than two server pods run,
    or the budget would let none of them go (it would block every node drain)."""
    serving = model.spec.serving
    budget = serving.disruption_budget
    replicas = fewest_replicas(model)
    if budget is None or not serving.enabled or replicas < 2 or evictable(budget, replicas) < 1:
        return None
    metadata = meta.object_meta(deployment_name(model), model, contracts.Component.SERVE)
    spec = {
        "selector": {"matchLabels": selector(model)},
        # The one not given is null, so that a merge patch switching from one to the other clears it
        # (a budget with both is refused).
        "minAvailable": budget.min_available,
        "maxUnavailable": budget.max_unavailable,
        # A server pod that is not ready serves nothing: evicting it never costs availability, and a
        # failed rollout must not block node drains.
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    return meta.with_spec_hash(
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": metadata, "spec": spec}
    )


def endpoint(model: Model) -> str:
    return f"http://{service_name(model)}.{model.namespace}.svc"


def shadow_service_name(model: Model) -> str:
    return meta.child_name(model.name, TRACK_SHADOW)


def shadow_service(model: Model) -> dict[str, Any]:
    """The shadowed candidate's own ClusterIP Service: what the champion mirrors to."""
    metadata = meta.object_meta(
        shadow_service_name(model), model, contracts.Component.SERVE, extra_labels={LABEL_TRACK: TRACK_SHADOW}
    )
    spec = {
        "type": "ClusterIP",
        "selector": candidate_selector(model, TRACK_SHADOW),
        "ports": [{"name": PORT_NAME, "port": SERVICE_PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
    }
    return meta.with_spec_hash({"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec})


def shadow_url(service: dict[str, Any]) -> str:
    """Where the champion mirrors to: the shadow Service's ClusterIP and port, not its DNS name, so
    mirroring needs no cluster DNS (the local cluster has none: a name would not resolve in its
    pods); the IP is fixed for the Service's life, and each candidate gets a new Service."""
    spec = service["spec"]
    return f"http://{spec['clusterIP']}:{spec['ports'][0]['port']}"
