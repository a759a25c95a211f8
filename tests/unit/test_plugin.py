"""kubectl-mlops: the pure parts (tables, version choices, explanations, argument parsing), then the
command line with the cluster replaced by objects in memory."""

from __future__ import annotations

import io
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

import mlops_operator
from mlops_operator import contracts
from mlops_operator.api.base import Condition, ConditionStatus, Resource
from mlops_operator.api.v1alpha1 import Dataset, DriftMonitor, Model
from mlops_operator.api.v1alpha1.model import GateReason
from mlops_operator.conditions import Reason
from mlops_operator.plugin import actions, cli, explain, output, resources, tables
from mlops_operator.plugin.cluster import Cluster

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


def stamp(minutes_ago: float) -> str:
    return resources.rfc3339(NOW - timedelta(minutes=minutes_ago))


def sample(name: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((REPO / "manifests" / "samples" / name).read_text())
    body["metadata"].update(namespace="team-a", creationTimestamp=stamp(90), generation=1)
    return body


def version(
    n: int, state: str, accuracy: float | None = None, served_minutes_ago: float | None = None
) -> dict[str, Any]:
    record: dict[str, Any] = {"version": n, "state": state, "createdAt": stamp(60 - n)}
    if accuracy is not None:
        record["metrics"] = {"accuracy": accuracy}
        record["gate"] = {
            "passed": True,
            "reason": "Passed",
            "message": "ok",
            "metric": "accuracy",
            "score": accuracy,
        }
    if served_minutes_ago is not None:
        record["servingAt"] = stamp(served_minutes_ago)
    return record


def manual_model(serving: int | None = 2, **spec: Any) -> Model:
    body = sample("model-manual.yaml")
    body["spec"].update(spec)
    body["status"] = {
        "phase": "Serving",
        "latestVersion": 4,
        "servingVersion": serving,
        "metric": "accuracy=0.96",
        "versions": [
            version(1, "Retired", 0.93, served_minutes_ago=50),
            version(2, "Serving", 0.96, served_minutes_ago=20),
            version(3, "Failed"),
            version(4, "Validated", 0.97),
        ],
    }
    return Model.model_validate(body)


def automatic_model() -> Model:
    body = manual_model().dump()
    body["spec"]["approval"]["policy"] = "Automatic"
    return Model.model_validate(body)


# --- tables --------------------------------------------------------------------------------------


def test_render_table_aligns_columns_and_marks_missing_values() -> None:
    text = tables.render_table(("NAME", "ROWS"), [("breast-cancer", 569), ("x", None)])
    assert text.splitlines() == ["NAME            ROWS", "breast-cancer   569", "x               -"]


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (7200, "2h"), (3 * 86400, "3d")],
)
def test_human_age_is_kubectl_style(seconds: int, expected: str) -> None:
    assert resources.human_age(NOW - timedelta(seconds=seconds), NOW) == expected


def test_model_table_shows_versions_phase_policy_and_age() -> None:
    table = tables.model_table([manual_model()], NOW)
    assert table.headers[:6] == ("NAME", "LATEST", "SERVING", "METRIC", "PHASE", "APPROVAL")
    assert table.rows[0][:7] == ("breast-cancer-rf", 4, 2, "accuracy=0.96", "Serving", "Manual", "1h")
    assert table.headers[7] == "ROLLOUT" and table.rows[0][7] is None  # no Canary or Shadow ran


@pytest.mark.parametrize(
    ("rollout", "expected"),
    [
        ({"strategy": "Canary", "candidate": 5, "stable": 4, "step": 1, "weight": 50}, "Canary v5 50% (step 2/3)"),
        ({"strategy": "Canary", "candidate": 5, "stable": 4, "phase": "RolledBack"}, "Canary v5 RolledBack"),
        (
            {"strategy": "Shadow", "candidate": 5, "stable": 4, "shadow": {"agreement": 0.9571}},
            "Shadow v5 agreement 95.7%",
        ),
        ({"strategy": "Shadow", "candidate": 5, "stable": 4}, "Shadow v5 waiting for mirrored requests"),
    ],
)
def test_model_table_shows_the_latest_canary_or_shadow(rollout: dict[str, object], expected: str) -> None:
    body = manual_model().model_dump(by_alias=True, mode="json", exclude_none=True)
    body["status"]["rollout"] = rollout
    table = tables.model_table([Model.model_validate(body)], NOW)
    assert table.rows[0][7] == expected


def test_status_table_handles_resources_without_status() -> None:
    ds = Dataset.model_validate(sample("dataset.yaml"))
    table = tables.status_table(Dataset, [ds], NOW)
    assert table.records() == [
        {
            "name": "breast-cancer",
            "version": None,
            "rows": None,
            "columns": None,
            "phase": "Pending",
            "findings": 0,
            "age": "1h",
        }
    ]
    assert "breast-cancer   -" in table.text()


def test_history_lists_newest_first_with_score_gate_and_pending_rejection() -> None:
    model = manual_model()
    model.metadata["annotations"] = {contracts.ANNOTATION_REJECTED_VERSIONS: json.dumps({"4": "biased on age"})}
    table = tables.history_table(model, NOW)
    assert [r[0] for r in table.rows] == [4, 3, 2, 1]
    assert table.headers[2] == "ACCURACY"
    v4 = table.records()[0]
    assert (v4["state"], v4["accuracy"], v4["gate"]) == ("Validated", 0.97, "passed")
    assert v4["note"] == "rejection pending: biased on age"


def test_drift_table_lists_drifted_features_first() -> None:
    body = sample("driftmonitor.yaml")
    body["status"] = {
        "lastVerdict": "Drift",
        "featureScores": [
            {"name": "a", "test": "ks", "score": 0.5, "threshold": 0.05, "drifted": False},
            {"name": "z", "test": "psi", "score": 0.4, "threshold": 0.2, "drifted": True},
        ],
    }
    table = tables.drift_table(DriftMonitor.model_validate(body))
    assert [(r[0], r[4]) for r in table.rows] == [("z", "yes"), ("a", "no")]


# --- version choices ------------------------------------------------------------------------------


def test_approve_accepts_a_validated_version_of_a_manual_model() -> None:
    assert actions.check_approvable(manual_model(), 4).version == 4


@pytest.mark.parametrize(
    ("model", "n", "message"),
    [
        (automatic_model(), 4, "approval policy Automatic"),
        (manual_model(), 3, "is Failed"),
        (manual_model(), 9, "has no version 9 (versions: 1, 2, 3, 4)"),
    ],
)
def test_approve_refuses_what_cannot_be_served(model: Model, n: int, message: str) -> None:
    with pytest.raises(resources.PluginError, match=message.replace("(", r"\(").replace(")", r"\)")):
        actions.check_approvable(model, n)


def test_approve_refuses_a_rejected_version() -> None:
    model = manual_model()
    model.metadata["annotations"] = {contracts.ANNOTATION_REJECTED_VERSIONS: '{"4":"no"}'}
    with pytest.raises(resources.PluginError, match="rejected"):
        actions.check_approvable(model, 4)


def test_reject_refuses_the_serving_and_the_approved_version() -> None:
    with pytest.raises(resources.PluginError, match="roll back first"):
        actions.check_rejectable(manual_model(), 2)
    with pytest.raises(resources.PluginError, match="approvedVersion"):
        actions.check_rejectable(manual_model(approvedVersion=4), 4)
    assert actions.check_rejectable(manual_model(), 4).version == 4


def test_rejections_accumulate_in_a_sorted_json_annotation() -> None:
    first = actions.with_rejection({}, 7, "leaks the label")
    second = actions.with_rejection({contracts.ANNOTATION_REJECTED_VERSIONS: first}, 3, "too slow")
    assert second == '{"3":"too slow","7":"leaks the label"}'
    assert contracts.rejected_versions({contracts.ANNOTATION_REJECTED_VERSIONS: second}) == {
        3: "too slow",
        7: "leaks the label",
    }


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '{"x": "y"}'])
def test_a_malformed_rejection_annotation_counts_as_none(raw: str) -> None:
    assert contracts.rejected_versions({contracts.ANNOTATION_REJECTED_VERSIONS: raw}) == {}


def test_retrain_annotation_is_time_and_a_one_line_reason() -> None:
    value = actions.retrain_annotation(NOW, "  drift on\n mean radius  ")
    assert value == "2026-11-28T12:00:00Z;drift on mean radius"
    assert contracts.ANNOTATION_RETRAIN_REQUESTED == "mlops.dev/retrain-requested"
    with pytest.raises(resources.PluginError, match="empty"):
        actions.retrain_annotation(NOW, " \n ")
    assert len(actions.retrain_annotation(NOW, "x" * 5000)) == len("2026-11-28T12:00:00Z;") + actions.MAX_REASON_LENGTH


def test_rollback_goes_to_the_version_served_before_the_current_one() -> None:
    model = manual_model()
    assert actions.rollback_target(model, None) == 1
    assert actions.rollback_patch(model, 1) == {"spec": {"approvedVersion": 1}}


def test_rollback_skips_rejected_versions_and_honours_to() -> None:
    model = manual_model()
    model.metadata["annotations"] = {contracts.ANNOTATION_REJECTED_VERSIONS: '{"1":"bad"}'}
    with pytest.raises(resources.PluginError, match="served no other version"):
        actions.rollback_target(model, None)
    assert actions.rollback_target(model, 4) == 4
    with pytest.raises(resources.PluginError, match="already serves"):
        actions.rollback_target(model, 2)
    with pytest.raises(resources.PluginError, match="cannot be served"):
        actions.rollback_target(model, 3)


def test_rollback_of_an_automatic_model_pins_it_to_manual() -> None:
    model = automatic_model()
    target = actions.rollback_target(model, None)
    assert actions.rollback_patch(model, target) == {"spec": {"approvedVersion": 1, "approval": {"policy": "Manual"}}}


def test_rollback_without_a_serving_version_says_so() -> None:
    with pytest.raises(resources.PluginError, match="serves no version yet"):
        actions.rollback_target(manual_model(serving=None), None)


# --- why --------------------------------------------------------------------------------------------


def test_why_without_status_points_at_the_operator() -> None:
    (only,) = explain.explain(Model.model_validate(sample("model-manual.yaml")), NOW)
    assert only.reason == "NotReconciled"
    assert "namespace team-a" in (only.hint or "")


def test_why_turns_each_condition_into_a_sentence_with_a_hint() -> None:
    model = manual_model()
    assert model.status is not None
    model.metadata["generation"] = 3
    model.status.observed_generation = 2
    model.status.conditions = [
        Condition(
            type="Ready",
            status=ConditionStatus.FALSE,
            reason="AwaitingApproval",
            message="version 4 is validated.",
            last_transition_time=NOW - timedelta(minutes=5),
        ),
        Condition(
            type="Serving", status=ConditionStatus.TRUE, reason="Serving", last_transition_time=NOW - timedelta(hours=2)
        ),
    ]
    pending, ready, serving = explain.explain(model, NOW)
    assert pending.reason == "SpecChangePending" and "generation 3" in pending.sentence
    assert ready.sentence == "Model breast-cancer-rf is not ready (AwaitingApproval): version 4 is validated."
    assert ready.hint is not None and "kubectl mlops approve breast-cancer-rf <version>" in ready.hint
    assert ready.since == "5m"
    assert serving.sentence == "Model breast-cancer-rf serves predictions (Serving)." and serving.hint is None
    text = explain.explanation_text([ready])
    assert text.splitlines()[0].endswith("(for 5m)") and text.splitlines()[1].startswith("  hint: ")


# Reasons that describe a normal state: nothing for the user to do, so no hint.
INFORMATIONAL = {
    "Initializing", "JobRunning", "Succeeded", "Profiling", "Profiled", "DatasetResolved", "NotTrained",
    "Approved", "RollingOut", "Serving", "RolledBack", "Superseded", "WaitingForSchedule", "Checking",
    "NoDrift", "Ready",
}  # fmt: skip


def test_every_reason_that_needs_action_has_a_hint() -> None:
    missing = {r.value for r in Reason} - INFORMATIONAL - set(explain.HINTS)
    assert not missing, f"add a hint to explain.HINTS for {sorted(missing)}"


def test_every_hint_formats_with_the_resource_fields() -> None:
    fields = explain.hint_fields("Model", "m", "ns")
    for reason, hint in explain.HINTS.items():
        assert "{" not in hint.format(**fields), reason


# --- parsing and reading -----------------------------------------------------------------------------


def test_global_flags_work_before_and_after_the_command() -> None:
    parser = cli.build_parser()
    before = parser.parse_args(["-n", "team-a", "-o", "json", "history", "m"])
    after = parser.parse_args(["history", "m", "-n", "team-b"])
    assert (before.namespace, before.output, before.model) == ("team-a", "json", "m")
    assert (after.namespace, after.output) == ("team-b", "table")


def test_versions_must_be_positive_and_reject_needs_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["approve", "m", "0"])
    with pytest.raises(SystemExit):
        parser.parse_args(["reject", "m", "2"])
    assert "--reason" in capsys.readouterr().err


def test_kind_aliases_resolve_and_unknown_kinds_explain_themselves() -> None:
    assert resources.resolve_kind("mdl") is Model and resources.resolve_kind("DriftMonitors") is DriftMonitor
    with pytest.raises(resources.PluginError, match="dataset \\(ds\\)"):
        resources.resolve_kind("pod")


def test_parse_resource_ignores_kopf_state_and_reports_foreign_fields() -> None:
    body = sample("model-manual.yaml")
    body["status"] = {"phase": "Pending", "kopf": {"progress": {}}}
    assert isinstance(resources.parse_resource(Model, body), Model)
    body["status"]["fromTheFuture"] = 1
    with pytest.raises(resources.PluginError, match="older than the operator"):
        resources.parse_resource(Model, body)


def test_table_records_serialise_to_json_and_yaml() -> None:
    records = tables.model_table([manual_model()], NOW).records()
    assert json.loads(json.dumps(records))[0]["serving"] == 2
    assert yaml.safe_load(yaml.safe_dump(records))[0]["approval"] == "Manual"


# --- the command line, with the cluster replaced ---------------------------------------------------------

R = TypeVar("R", bound=Resource)


class FakeCluster(Cluster):
    """Parsed objects in memory instead of an API server; a patch changes nothing."""

    def __init__(self, *objects: Resource) -> None:  # no kubeconfig: nothing to connect to
        self.objects = list(objects)

    def close(self) -> None:
        pass

    def default_namespace(self) -> str:
        return "team-a"

    def get(self, cls: type[R], namespace: str, name: str) -> R:
        for obj in self.objects:
            if isinstance(obj, cls) and (obj.namespace, obj.name) == (namespace, name):
                return obj
        raise resources.PluginError(f"{cls.crd.kind} {name} not found in namespace {namespace}")

    def list(self, cls: type[Resource], namespace: str | None) -> tuple[list[Resource], list[str]]:
        found = [o for o in self.objects if isinstance(o, cls) and namespace in (None, o.namespace)]
        return sorted(found, key=lambda o: (o.namespace, o.name)), []

    def merge_patch(self, cls: type[R], namespace: str, name: str, patch: dict[str, Any]) -> R:
        return self.get(cls, namespace, name)


def mlops(monkeypatch: pytest.MonkeyPatch, cluster: Cluster, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(cli, "Cluster", lambda kubeconfig, context: cluster)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


HOSTILE = "\x1b[2J\x1b]0;owned\x07cleared\nReady   True   \x9b31m\u202eevil"


def hostile_model() -> Model:
    model = manual_model()
    assert model.status is not None
    ready = {"type": "Ready", "status": "False", "reason": "Drift", "message": HOSTILE, "lastTransitionTime": NOW}
    model.status.conditions = [Condition.model_validate(ready)]
    model.status.versions[2].message = HOSTILE  # version 3, Failed: its message is in approve's refusal
    return model


def test_printable_shows_control_characters_instead_of_obeying_them() -> None:
    assert output.printable("a\x1b[31mb\tc\r\nd\x00\x7f") == "a^[[31mb c  d^@^?"
    assert output.printable("\x9b1m\u202egnp.exe") == "\\x9b1m\\u202egnp.exe"
    assert output.printable_text("line one\nline\x1b two") == "line one\nline^[ two"


def test_cluster_text_cannot_drive_the_terminal_or_add_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = FakeCluster(hostile_model())
    for argv in (["status", "model", "breast-cancer-rf"], ["why", "mdl", "breast-cancer-rf"]):
        code, out, _ = mlops(monkeypatch, cluster, *argv)
        assert code == 0
        assert not any(ch in out for ch in "\x1b\x07\x9b\u202e"), argv
        assert "^[[2J^[]0;owned^Gcleared Ready   True   \\x9b31m\\u202eevil" in out
        assert sum("cleared" in line for line in out.splitlines()) == 1
    code, out, _ = mlops(monkeypatch, cluster, "status", "model", "breast-cancer-rf", "-o", "json")
    assert "\x1b" not in out and json.loads(out)["conditions"][0]["message"] == HOSTILE
    code, out, err = mlops(monkeypatch, cluster, "approve", "breast-cancer-rf", "3")
    assert (code, out) == (1, "") and "\x1b" not in err and len(err.splitlines()) == 1


KUBECONFIG = """clusters: [{name: c, cluster: {server: "SERVER"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x"""


def test_an_unreachable_api_server_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(KUBECONFIG.replace("SERVER", f"https://127.0.0.1:{port}"))
    out, err = io.StringIO(), io.StringIO()
    assert (cli.main(["status", "--kubeconfig", str(kubeconfig)], out=out, err=err), out.getvalue()) == (1, "")
    assert err.getvalue() == f"error: cannot reach the API server at https://127.0.0.1:{port}: Connection refused\n"
    err = io.StringIO()
    assert cli.main(["status", "--kubeconfig", str(tmp_path / "missing")], err=err) == 1
    assert err.getvalue().startswith("error: cannot load kubeconfig: ") and err.getvalue().count("\n") == 1


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.build_parser().parse_args(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"kubectl mlops {mlops_operator.__version__}\n"


def test_status_all_namespaces_adds_a_namespace_column(monkeypatch: pytest.MonkeyPatch) -> None:
    other = manual_model().dump()
    other["metadata"].update(name="churn", namespace="team-b")
    cluster = FakeCluster(manual_model(), Model.model_validate(other))
    out = mlops(monkeypatch, cluster, "status", "models", "-A")[1]
    rows = [line.split()[:2] for line in out.splitlines()]
    assert rows == [["NAMESPACE", "NAME"], ["team-a", "breast-cancer-rf"], ["team-b", "churn"]]
    code, out, _ = mlops(monkeypatch, cluster, "status", "--all-namespaces", "-o", "json")
    assert [m["namespace"] for m in json.loads(out)["models"]] == ["team-a", "team-b"]
    assert mlops(monkeypatch, cluster, "status", "dm", "-A")[1] == "No driftmonitors in any namespace.\n"
    code, _, err = mlops(monkeypatch, cluster, "status", "model", "churn", "-A")
    assert code == 1 and "-n NAMESPACE" in err
    assert "churn" not in mlops(monkeypatch, cluster, "status", "models")[1]


def test_the_advertised_ds_alias_names_datasets(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resources.resolve_kind("ds") is Dataset and resources.resolve_kind("dset") is Dataset
    cluster = FakeCluster(Dataset.model_validate(sample("dataset.yaml")))
    code, out, err = mlops(monkeypatch, cluster, "status", "ds", "breast-cancer")
    assert code == 0 and out.splitlines()[1].startswith("breast-cancer "), err


def test_every_refusing_gate_reason_has_a_hint() -> None:
    refusing = {r for r in GateReason if r != GateReason.PASSED}
    assert refusing <= set(explain.HINTS)


def test_rejected_versions_skip_keys_that_are_no_version() -> None:
    from mlops_operator import contracts

    raw = '{"²": "x", "' + "9" * 5000 + '": "y", "3": "bad data", "-1": "z", " 4": "w"}'
    assert contracts.rejected_versions({contracts.ANNOTATION_REJECTED_VERSIONS: raw}) == {3: "bad data"}
    deep = "[" * 100_000 + "]" * 100_000
    assert contracts.rejected_versions({contracts.ANNOTATION_REJECTED_VERSIONS: deep}) == {}
