from __future__ import annotations

from mlops_operator.builders import jobs, namespace, pods
from mlops_operator.settings import Settings
from tests.unit import factories as f


def test_settings_read_the_variables_the_chart_sets() -> None:
    env = {
        "MLOPS_IMAGE": "registry/mlops:1.2",
        "MLOPS_NAMESPACES": "team-a, team-b",
        "MLOPS_STORE_URI": "s3://bucket/prefix",
        "MLOPS_STORE_CLAIM": "",
        "MLOPS_STORE_SECRET": "mlops-s3",
        "MLOPS_STORE_ACCESS_MODES": "ReadWriteMany",
        "MLOPS_SERVING_SERVICE_ACCOUNT": "mlops-serving",
        "MLOPS_RESYNC_SECONDS": "45",
    }
    s = Settings.from_env(env)
    assert s.image == "registry/mlops:1.2" and s.namespaces == ("team-a", "team-b")
    assert s.store_access_modes == ("ReadWriteMany",) and s.resync_seconds == 45.0
    assert Settings.from_env({}) == Settings()


def test_object_store_pods_get_credentials_by_reference_and_no_claim() -> None:
    s = Settings(store_uri="s3://bucket/prefix", store_claim="", store_secret="mlops-s3")
    job = jobs.profile_job(f.dataset(), s, 0)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "mlops-s3"}}]
    assert [v["name"] for v in job["spec"]["template"]["spec"]["volumes"]] == [pods.TMP_VOLUME]
    assert namespace.store_claim("team-a", s) is None


def test_workload_identity_labels_pods_and_annotates_accounts() -> None:
    s = Settings(azure_client_id="abc")
    job = jobs.profile_job(f.dataset(), s, 0)
    assert job["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    accounts = namespace.service_accounts("team-a", s)
    assert all(a["metadata"]["annotations"] == {"azure.workload.identity/client-id": "abc"} for a in accounts)
    assert all(a["automountServiceAccountToken"] is False for a in accounts)
