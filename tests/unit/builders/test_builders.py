"""Properties every rendered object must have, beyond the golden snapshots."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mlops_operator import contracts
from mlops_operator.api.plans import DriftPlan, NotifyPlan, ProfilePlan, TrainingPlan
from mlops_operator.api.v1alpha1.model import ModelVersion, VersionState
from mlops_operator.builders import jobs, meta, serving
from mlops_operator.settings import Settings
from tests.unit import factories as f

TICK = datetime(2026, 1, 2, 3, 0, 0, tzinfo=UTC)
SERVED = ModelVersion(
    version=3, state=VersionState.APPROVED, artifact_uri="file:///x/model.skops", sha256="a" * 64
)


def _pod_specs() -> list[dict[str, Any]]:
    model_ = f.model()
    request = jobs.training_request("abc", "d" * 64, None)
    plan = f.training_plan(model_, dataset_version="d" * 64)
    monitor = f.monitor(action={"webhook": {"secretRef": {"name": "hooks", "key": "url"}}})
    drift_plan = jobs.drift_plan(monitor, tick=TICK, profile_uri="file:///p", settings=f.SETTINGS)
    objects = [
        jobs.profile_job(f.dataset(), f.SETTINGS, 0),
        jobs.training_job(model_, plan, request, f.SETTINGS),
        jobs.drift_job(monitor, drift_plan, TICK, f.SETTINGS),
        jobs.notify_job(monitor, {"text": "x"}, TICK, f.SETTINGS),
        serving.deployment(model_, SERVED, f.SETTINGS),
    ]
    return [o["spec"]["template"]["spec"] for o in objects]


@pytest.mark.parametrize("index", range(5))
def test_every_pod_is_restricted(index: int) -> None:
    pod = _pod_specs()[index]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["limits"]["memory"]
        assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])
    allowed = {"emptyDir", "persistentVolumeClaim", "name"}
    assert all(set(v) <= allowed for v in pod["volumes"])


def test_plans_on_the_command_line_parse_back() -> None:
    """The --spec value the builders write is exactly what the workloads parse."""
    model_ = f.model()
    plan = f.training_plan(model_, version=2)
    job = f.training_job(model_, plan)
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "train"
    assert args[1:] == [contracts.PLAN_FLAG, args[2]]  # the plan is the whole command line
    assert TrainingPlan.model_validate_json(args[2]) == plan
    monitor = f.monitor()
    drift_plan = jobs.drift_plan(monitor, tick=TICK, profile_uri="file:///p", settings=f.SETTINGS)
    drift_args = jobs.drift_job(monitor, drift_plan, TICK, f.SETTINGS)["spec"]["template"]["spec"][
        "containers"
    ][0]["args"]
    assert drift_args[:2] == ["drift", contracts.PLAN_FLAG] and len(drift_args) == 3
    parsed = DriftPlan.model_validate_json(drift_args[2])
    assert parsed.window_end == TICK and (TICK - parsed.window_start).total_seconds() == 3600
    assert parsed == drift_plan


def test_drift_plan_takes_the_test_settings_from_the_spec_as_they_are() -> None:
    monitor = f.monitor(
        minSamples=7,
        numericTest="psi",
        categoricalTest="chisquare",
        threshold=0.3,
        driftShare=0.25,
        bonferroni=True,
        features=[{"name": "petal_width", "test": "ks", "threshold": 0.1}],
    )
    plan = jobs.drift_plan(monitor, tick=TICK, profile_uri="file:///p", settings=f.SETTINGS)
    assert (plan.min_samples, plan.numeric_test, plan.categorical_test) == (7, "psi", "chisquare")
    assert (plan.threshold, plan.drift_share, plan.bonferroni) == (0.3, 0.25, True)
    assert plan.features == monitor.spec.features and plan.features is not monitor.spec.features


def test_profile_job_hands_the_workload_a_profile_plan() -> None:
    dataset = f.dataset()
    args = jobs.profile_job(dataset, f.SETTINGS, 0)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["profile", contracts.PLAN_FLAG] and len(args) == 3
    assert ProfilePlan.model_validate_json(args[2]) == ProfilePlan(
        namespace=dataset.namespace, dataset=dataset.name, spec=dataset.spec, store_uri=f.SETTINGS.store_uri
    )


def test_training_job_fails_fast_on_permanent_exit_codes_and_ignores_disruptions() -> None:
    model_ = f.model()
    spec = f.training_job(model_, f.training_plan(model_, target="t"))["spec"]
    ignore, fail = spec["podFailurePolicy"]["rules"]
    assert ignore == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}
    assert fail["action"] == "FailJob" and fail["onExitCodes"]["values"] == [10, 11, 13]
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert (
        spec["backoffLimit"] == 2
        and spec["activeDeadlineSeconds"] == 3600
        and spec["ttlSecondsAfterFinished"] == 3600
    )


def test_owner_reference_is_the_controller_and_blocks_deletion() -> None:
    job = jobs.profile_job(f.dataset(), f.SETTINGS, 0)
    (ref,) = job["metadata"]["ownerReferences"]
    assert ref == {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "Dataset",
        "name": "iris",
        "uid": "11111111-1111-1111-1111-111111111111",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_job_names_are_deterministic_and_change_with_the_request() -> None:
    model_ = f.model()
    a = jobs.training_request(jobs.training_spec_hash(model_), "v1", None)
    assert jobs.training_job_name(model_, a) == jobs.training_job_name(f.model(), dict(a))
    assert jobs.training_job_name(model_, a) != jobs.training_job_name(model_, a | {"dataset": "v2"})
    assert jobs.training_job_name(model_, a) != jobs.training_job_name(model_, a | {"retrain": "t;drift"})
    other_params = f.model(
        trainer={"estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": 0.5}}
    )
    assert jobs.training_spec_hash(other_params) != jobs.training_spec_hash(model_)
    # serving and approval do not call for retraining
    assert jobs.training_spec_hash(f.model(serving={"replicas": 3}, approval={"policy": "Manual"})) == (
        jobs.training_spec_hash(model_)
    )


def test_long_names_are_cut_to_63_characters_keeping_the_identifying_suffix() -> None:
    long_name = "m" * 63
    model_ = f.model(long_name)
    name = jobs.training_job_name(model_, jobs.training_request("h", "v", None))
    assert len(name) <= 63 and name.endswith("-train-" + meta.hash8(jobs.training_request("h", "v", None)))
    monitor = f.monitor("d" * 63)
    drift = jobs.drift_job_name(monitor, TICK)
    assert len(drift) == 63 and drift.endswith("-drift-20260102030000")
    assert len(serving.deployment_name(model_)) <= 63
    assert meta.child_name("abc-", "x") == "abc-x"  # no "--" left by the cut


def test_label_values_are_valid_even_for_a_64_char_hash() -> None:
    value = meta.label_value("f" * 64)
    assert len(value) == 63


def test_drift_job_names_differ_per_tick_and_not_within_one() -> None:
    monitor = f.monitor()
    assert jobs.drift_job_name(monitor, TICK) == jobs.drift_job_name(monitor, TICK)
    assert jobs.drift_job_name(monitor, TICK) != jobs.drift_job_name(monitor, TICK.replace(minute=5))


def test_webhook_secret_only_reaches_the_pod_by_reference() -> None:
    monitor = f.monitor(
        action={"webhook": {"secretRef": {"name": "hooks", "key": "slack"}, "format": "teams"}}
    )
    payload = jobs.webhook_payload(
        monitor,
        verdict="Drift",
        drifted_features=["a", "b"],
        drifted_share=0.5,
        report_uri="file:///r.html",
        tick=TICK,
    )
    assert payload["text"].startswith("Drift detected") and payload["@type"] == "MessageCard"
    job = jobs.notify_job(monitor, payload, TICK, f.SETTINGS)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    url = next(e for e in container["env"] if e["name"] == contracts.ENV_WEBHOOK_URL)
    assert url == {
        "name": contracts.ENV_WEBHOOK_URL,
        "valueFrom": {"secretKeyRef": {"name": "hooks", "key": "slack"}},
    }
    assert all("pvc" not in str(v) for v in job["spec"]["template"]["spec"]["volumes"])
    assert container["command"] == ["mlops-operator"]
    assert container["args"][:2] == ["notify", contracts.PLAN_FLAG] and len(container["args"]) == 3
    assert NotifyPlan.model_validate_json(container["args"][2]) == NotifyPlan(payload=payload)


def test_notify_plan_allows_http_and_private_destinations_only_when_the_settings_do() -> None:
    monitor = f.monitor(action={"webhook": {"secretRef": {"name": "hooks", "key": "url"}}})

    def plan(settings: Settings) -> NotifyPlan:
        (container,) = jobs.notify_job(monitor, {"text": "x"}, TICK, settings)["spec"]["template"]["spec"][
            "containers"
        ]
        return NotifyPlan.model_validate_json(container["args"][2])

    assert (plan(f.SETTINGS).allow_http, plan(f.SETTINGS).allow_private) == (False, False)
    both = plan(Settings(webhook_allow_http=True, webhook_allow_private=True))
    assert (both.allow_http, both.allow_private) == (True, True)
    assert Settings.from_env({"MLOPS_WEBHOOK_ALLOW_HTTP": "true", "MLOPS_WEBHOOK_ALLOW_PRIVATE": "1"}) == Settings(
        webhook_allow_http=True, webhook_allow_private=True
    )


def test_deployment_rolls_on_a_new_version_and_never_drops_capacity() -> None:
    model_ = f.model()
    v3 = serving.deployment(model_, SERVED, f.SETTINGS)
    v4 = serving.deployment(model_, SERVED.model_copy(update={"version": 4}), f.SETTINGS)
    assert v3["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert v3["spec"]["template"] != v4["spec"]["template"]
    assert (
        v3["metadata"]["annotations"][contracts.ANNOTATION_SPEC_HASH]
        != (v4["metadata"]["annotations"][contracts.ANNOTATION_SPEC_HASH])
    )
    assert v3["spec"]["selector"] == v4["spec"]["selector"]  # immutable: must not carry the version
    probe = v3["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe["httpGet"]["path"] == "/v2/models/iris-clf/ready"


def test_server_refuses_to_render_an_unverified_artifact() -> None:
    with pytest.raises(ValueError, match="no verified artifact"):
        serving.deployment(f.model(), ModelVersion(version=1, state=VersionState.APPROVED), f.SETTINGS)
