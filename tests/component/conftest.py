"""Fixtures for the component tests of the store, `profile` and `train`: real files, real runs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_operator import contracts
from mlops_operator.api.plans import ProfilePlan, TrainingPlan
from mlops_operator.api.results import ProfileResult
from mlops_operator.workloads import profile, train

CONSOLE_SCRIPT = Path(sys.executable).with_name("mlops-operator")


@dataclass(frozen=True)
class Run:
    """One workload run: exit code, the result it printed, its stderr (empty when in-process)."""

    exit_code: int
    result: dict[str, Any]
    stderr: str = ""
    termination_message: bytes = b""


@pytest.fixture(autouse=True)
def termination_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep in-process runs from writing /dev/termination-log; tests read this file instead."""
    path = tmp_path / "termination-log"
    monkeypatch.setenv(contracts.ENV_TERMINATION_LOG, str(path))
    return path


@pytest.fixture
def store_root(tmp_path: Path) -> str:
    return (tmp_path / "store").as_uri()


def run_cli(command: str, argv: list[str], termination_log: Path) -> Run:
    """Run `mlops-operator <command> ...` as a real process."""
    env = {**os.environ, contracts.ENV_TERMINATION_LOG: str(termination_log)}
    command_line = [str(CONSOLE_SCRIPT), command, *argv]
    done = subprocess.run(command_line, capture_output=True, text=True, env=env, timeout=600, check=False)
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    message = termination_log.read_bytes() if termination_log.exists() else b""
    return Run(done.returncode, result, done.stderr, message)


def run_main(main: Callable[[list[str]], int], argv: list[str], termination_log: Path) -> Run:
    """Run a workload's main() in this process; the result is read back from the termination log."""
    exit_code = main(argv)
    message = termination_log.read_bytes()
    return Run(exit_code, json.loads(message), termination_message=message)


def profile_plan(store_root: str, uri: str, target: str | None = "target", **spec: Any) -> ProfilePlan:
    return ProfilePlan.model_validate(
        {
            "namespace": "ns",
            "dataset": "ds",
            "storeUri": store_root,
            "spec": {"source": {"uri": uri}, "schema": {"target": target} if target else {}, **spec},
        }
    )


def run_profile(plan: ProfilePlan, termination_log: Path) -> Run:
    return run_main(profile.main, ["--spec", plan.model_dump_json(by_alias=True)], termination_log)


def training_plan(
    profiled: ProfileResult,
    store_root: str,
    estimator: str = "sklearn.linear_model.LogisticRegression",
    task: str = "classification",
    version: int = 1,
    **fields: Any,
) -> TrainingPlan:
    assert profiled.data_uri is not None and profiled.version is not None
    return TrainingPlan.model_validate(
        {
            "namespace": "ns",
            "model": "m",
            "version": version,
            "task": task,
            "target": profiled.target or "target",
            "estimator": estimator,
            "datasetVersion": profiled.version,
            "dataUri": profiled.data_uri,
            "outputDir": contracts.model_version_dir(store_root, "ns", "m", version),
            **fields,
        }
    )


def run_train(plan: TrainingPlan, termination_log: Path) -> Run:
    return run_main(train.main, ["--spec", plan.model_dump_json(by_alias=True)], termination_log)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3 endpoint (moto's server) on 127.0.0.1, for the s3fs code path."""
    pytest.importorskip("s3fs", reason="the s3 extra is not installed")
    server_module = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_root(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; the workloads reach it through the standard AWS_* environment only."""
    for name, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    import fsspec

    fsspec.get_filesystem_class("s3").clear_instance_cache()  # instances made before the env changed
    bucket = f"mlops-{uuid.uuid4().hex[:12]}"
    fs = fsspec.filesystem("s3")
    fs.mkdir(bucket)
    return f"s3://{bucket}/root"


AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's documented, public development key (not a secret): every Azurite accepts it.
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_binary() -> Path | None:
    """hack/install-prereqs.sh installs Azurite under the cache (MLOPS_AZURITE overrides)."""
    if os.environ.get("MLOPS_AZURITE"):
        return Path(os.environ["MLOPS_AZURITE"])
    cache = Path(os.environ.get("MLOPS_CACHE", "/var/cache/mlops-operator"))
    found = sorted(cache.glob("azurite/*/node_modules/.bin/azurite-blob"))
    return found[-1] if found else None


@pytest.fixture(scope="session")
def azure_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local Azure Blob endpoint (Azurite) on 127.0.0.1, for the adlfs code path."""
    pytest.importorskip("adlfs", reason="the azure extra is not installed")
    binary = azurite_binary()
    if binary is None or not binary.exists():
        pytest.skip("Azurite is not installed (hack/install-prereqs.sh installs it with npm)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = tmp_path_factory.mktemp("azurite")
    where = ["--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(data)]
    proc = subprocess.Popen(
        [str(binary), *where, "--silent", "--skipApiVersionCheck", "--loose"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Azurite did not start (exit {proc.poll()})") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture
def az_root(azure_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh container; workloads reach it through AZURE_STORAGE_CONNECTION_STRING only."""
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={azure_endpoint};",
    )
    import fsspec

    fsspec.get_filesystem_class("az").clear_instance_cache()
    container = f"mlops-{uuid.uuid4().hex[:12]}"
    fsspec.filesystem("az").mkdir(container)
    return f"az://{container}/root"


@pytest.fixture(params=["s3", "az"])
def object_root(request: pytest.FixtureRequest) -> str:
    """S3 (moto) and Azure Blob (Azurite): the object-store code path, with each real client library."""
    root: str = request.getfixturevalue(f"{request.param}_root")
    return root


@pytest.fixture(scope="session")
def profiled_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], ProfileResult]]:
    """Profile a bundled dataset once per session: `profiled_store("wine")` -> its ProfileResult."""
    root = tmp_path_factory.mktemp("profiled").as_uri()
    done: dict[str, ProfileResult] = {}

    def get(name: str) -> ProfileResult:
        if name not in done:
            done[name] = profile.profile(profile_plan(root, f"sklearn://{name}"))
        return done[name]

    yield get


def synthetic_frame(rows: int, seed: int = 0, numeric: int = 6, categorical: int = 2) -> pd.DataFrame:
    """A classification table with numeric and text columns, a few gaps, and a learnable binary target."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {f"x{i}": rng.normal(size=rows) for i in range(numeric)}
    for i in range(categorical):
        columns[f"c{i}"] = rng.choice(["red", "green", "blue", "amber"], size=rows)
    frame = pd.DataFrame(columns)
    signal = frame["x0"] - 0.5 * frame["x1"] + (frame["c0"] == "red") * 1.0 if categorical else frame["x0"]
    frame["target"] = np.where(signal + rng.normal(scale=0.5, size=rows) > 0, "yes", "no")
    gaps = rng.random(rows) < 0.02
    frame.loc[gaps, "x1"] = np.nan
    return frame
