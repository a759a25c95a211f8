"""Issue 14's object-store acceptance: the chart installed by Helm with `store.type=s3` against a moto
server (and `store.type=azure` against Azurite), and the whole lifecycle (profile, train, serve, drift)
with every workload pod reading and writing `s3://` (`az://`).

The servers run on the host, bound to the cluster bridge's address (10.88.0.1, where pods reach the
host and nothing off the machine does). The credentials are a Secret in the workload namespace
(`store.credentials=perNamespace`, as docs/install.md says); the operator's pod never gets them. Each
release watches its own namespace only, so it runs beside any other test's release.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pytest

from tests.e2e.conftest import CACHE, Cluster
from tests.e2e.test_install import Release, first_predictions, predict, serving
from tests.e2e.test_model_lifecycle import records

pytestmark = pytest.mark.e2e

BRIDGE = "10.88.0.1"  # the local cluster's cni0 address on the host (tests/e2e/conftest.py LOCAL_SERVER)
BUCKET, PREFIX, SECRET = "mlops-e2e", "mlops", "mlops-store"
# The emulators accept these; they are credentials nowhere (Azurite's is its published well-known key).
S3_KEYS = {"AWS_ACCESS_KEY_ID": "e2e-tenant-key", "AWS_SECRET_ACCESS_KEY": "e2e-tenant-secret"}
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass
class Store:
    """An emulated object store as the test sees it (fs) and as the chart and the pods get it."""

    scheme: str
    fs: fsspec.AbstractFileSystem
    secret: dict[str, str]  # the workload namespace's Secret
    helm: tuple[str, ...]  # --set arguments

    def tenant(self, namespace: str) -> str:
        """`<bucket>/<prefix>/<namespace>/`: the only place the namespace's pods may read and write."""
        return f"{BUCKET}/{PREFIX}/{namespace}/"


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def server(argv: list[str], port: int, log: Path) -> Iterator[None]:
    """A host process listening on BRIDGE:port until the block ends."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection((BRIDGE, port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{argv[0]} did not start:\n{log.read_text()[-2000:]}") from None
                time.sleep(0.3)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def moto(port: int) -> Store:
    endpoint = f"http://{BRIDGE}:{port}"
    keys = {"key": S3_KEYS["AWS_ACCESS_KEY_ID"], "secret": S3_KEYS["AWS_SECRET_ACCESS_KEY"]}
    fs = fsspec.filesystem("s3", endpoint_url=endpoint, **keys)  # no region: CreateBucket in us-east-1
    helm = ("store.type=s3", f"store.s3.bucket={BUCKET}", f"store.s3.prefix={PREFIX}", f"store.s3.endpoint={endpoint}")
    return Store("s3", fs, S3_KEYS, (*helm, "store.s3.region=us-east-1", f"store.s3.secretRef.name={SECRET}"))


def azurite(port: int) -> Store:
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://{BRIDGE}:{port}/{AZURITE_ACCOUNT};"
    )
    fs = fsspec.filesystem("az", connection_string=connection)
    helm = (
        *("store.type=azure", f"store.azure.storageAccount={AZURITE_ACCOUNT}"),
        *(f"store.azure.container={BUCKET}", f"store.azure.prefix={PREFIX}"),
        # a connection string from a Secret (on AKS the documented way is workload identity)
        f"store.azure.secretRef.name={SECRET}",
    )
    return Store("az", fs, {"AZURE_STORAGE_CONNECTION_STRING": connection}, helm)


def azurite_binary() -> str | None:
    """hack/install-prereqs.sh installs Azurite under the cache (MLOPS_AZURITE overrides)."""
    found = sorted(CACHE.glob("azurite/*/node_modules/.bin/azurite-blob"))
    return os.environ.get("MLOPS_AZURITE") or (str(found[-1]) if found else None)


@pytest.fixture(scope="module", params=["s3", "az"])
def store(
    request: pytest.FixtureRequest, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    if not cluster.local:
        pytest.skip("the emulators run on the local cluster's host bridge")
    port, log = free_port(BRIDGE), tmp_path_factory.mktemp(request.param) / "server.log"
    if request.param == "s3":
        argv, make = [str(Path(sys.executable).with_name("moto_server")), "-H", BRIDGE, "-p", str(port)], moto
    else:
        binary = azurite_binary()
        if binary is None:
            pytest.skip("Azurite is not installed (hack/install-prereqs.sh installs it with npm)")
        where = ["--blobHost", BRIDGE, "--blobPort", str(port), "--location", str(log.parent)]
        argv, make = [str(binary), *where, "--silent", "--skipApiVersionCheck", "--loose"], azurite
    with server(argv, port, log):
        emulated = make(port)
        emulated.fs.mkdir(BUCKET)
        yield emulated


@pytest.fixture(scope="module")
def release(cluster: Cluster, image: str, store: Store) -> Iterator[Release]:
    rel = Release.fresh(cluster, image, store.scheme)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET}, "stringData": store.secret}
    cluster.apply(secret, namespace=rel.workloads)
    try:
        rel.install(*(a for value in (*store.helm, "store.credentials=perNamespace") for a in ("--set", value)))
        yield rel
    finally:
        rel.uninstall()
        rel.remove_everything()


def upload_source(store: Store, path: str) -> None:
    """The breast-cancer table as a CSV in the namespace's own prefix (the only place a tenant may read)."""
    from sklearn.datasets import load_breast_cancer

    buffer = io.StringIO()
    load_breast_cancer(as_frame=True).frame.to_csv(buffer, index=False)
    store.fs.pipe(path, buffer.getvalue().encode())


def shifted(rows: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v * 3.0 + 1.0 for k, v in row.items()} for row in rows]


def obj(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "mlops.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def test_the_lifecycle_reads_and_writes_the_object_store(cluster: Cluster, release: Release, store: Store) -> None:
    ns = release.workloads
    tenant = store.tenant(ns)
    uri = f"{store.scheme}://{tenant}"
    upload_source(store, f"{tenant}incoming/cancer.csv")
    dataset = {"source": {"uri": f"{uri}incoming/cancer.csv"}, "schema": {"target": "target"}}
    model = {
        "datasetRef": {"name": "cancer"},
        "trainer": {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 2000}},
        "validation": {"metric": "accuracy", "threshold": 0.8, "mustBeatChampion": False},
        "serving": {"collection": {"flushIntervalSeconds": 2, "flushRows": 200}},
    }
    monitor = {
        "modelRef": {"name": "clf"},
        "schedule": {"intervalSeconds": 20},
        "windowSeconds": 40,
        "minSamples": 50,
        "action": {"retrain": False},
    }
    cluster.apply(
        obj("Dataset", "cancer", dataset), obj("Model", "clf", model), obj("DriftMonitor", "clf", monitor), namespace=ns
    )

    ready = release.wait_for(
        "dataset", "cancer", "phase Ready", lambda o: (o.get("status") or {}).get("phase") == "Ready"
    )
    assert ready["status"]["rows"] == 569
    served = release.wait_for("model", "clf", "Serving", serving)
    version = next(v for v in served["status"]["versions"] if v["version"] == served["status"]["servingVersion"])
    assert version["artifactUri"].startswith(f"{uri}models/clf/")
    rows = records(569)
    predictions = first_predictions(cluster, ns, "clf", rows[:5])
    assert len(predictions) == 5 and set(predictions) <= {0, 1}

    # shifted scoring traffic: collected by the server into the store, read back by the drift Job
    deadline = time.monotonic() + 240
    drifted: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):  # a slow answer under load: the next round sends again
            predict(cluster, ns, "clf", shifted(rows[:200]))
        drifted = release.get("driftmonitor", "clf").get("status") or {}
        if drifted.get("lastVerdict") == "Drift":
            break
        time.sleep(1)
    assert drifted.get("lastVerdict") == "Drift", release.cluster.diagnose(ns)
    assert drifted["reportUri"].startswith(f"{uri}drift/clf/")

    # every kind of artifact is an object in the tenant's prefix, and nothing outside it
    store.fs.invalidate_cache()  # list what the pods wrote, not what this process listed before
    keys = sorted(store.fs.find(BUCKET))
    areas = {k[len(tenant) :].split("/", 1)[0] for k in keys if k.startswith(tenant)}
    assert {"incoming", "datasets", "models", "collected", "drift"} <= areas, keys
    assert all(k.startswith(tenant) for k in keys), keys
    report = drifted["reportUri"].removeprefix(f"{store.scheme}://")
    assert any(k.startswith(report) for k in keys), (report, keys)
    # the credentials stayed in the Secret: not on the operator's pod, not in any status
    operator = release.operator_pod()["spec"]["containers"][0]
    assert not operator.get("envFrom") and all(e["name"] not in store.secret for e in operator.get("env", []))
    statuses = cluster.kubectl("-n", ns, "get", "datasets,models,driftmonitors", "-o", "json").stdout
    assert S3_KEYS["AWS_SECRET_ACCESS_KEY"] not in statuses and AZURITE_KEY not in statuses
