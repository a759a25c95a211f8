"""kubectl-mlops without the ML stack (hack/plugin-dist.sh): the wheel asks for pydantic, PyYAML and
kubernetes only; the wheel's code and the krew archive's launcher run with numpy, pandas, scikit-learn,
kopf and the rest made unimportable; the krew manifest is well formed and names the archive's sha256."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
import yaml

from mlops_operator import __version__

REPO = Path(__file__).resolve().parents[2]
# What the operator and the workloads need and the plugin must not.
ML_STACK = ("numpy", "pandas", "sklearn", "scipy", "pyarrow", "skops", "fsspec", "kopf", "uvicorn", "prometheus_client")
BLOCKER = f"""
import sys

class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {ML_STACK!r}:
            raise ImportError(f"{{name}} is not installed with kubectl-mlops")

sys.meta_path.insert(0, _Blocked())
"""


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [str(REPO / "hack" / "plugin-dist.sh")],
        env={**os.environ, "DIST": str(out), "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return out


def run_blocked(lib: Path, *args: str, launcher: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The plugin from `lib` (or through the krew `launcher`), the ML stack unimportable (sitecustomize)."""
    site = lib.parent / "blocker"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {"PATH": os.environ["PATH"], "HOME": str(lib.parent), "PYTHONPATH": str(site)}
    if launcher is not None:
        command = [str(launcher), *args]
        env["KUBECTL_MLOPS_PYTHON"] = sys.executable
    else:
        env["PYTHONPATH"] += f":{lib}"
        command = [sys.executable, "-m", "mlops_operator.plugin", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=lib.parent)


def unreachable_kubeconfig(where: Path) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "team-a"}}],
        "current-context": "x",
    }
    path = where / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def probe(lib: Path, code: str) -> subprocess.CompletedProcess[str]:
    """`code` run the way run_blocked runs the plugin from `lib`."""
    site = lib.parent / "blocker"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": f"{site}:{lib}"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_the_blocker_blocks_and_the_copy_under_test_is_the_one_imported(dist: Path, tmp_path: Path) -> None:
    """Without this the rest proves nothing: numpy and mlops_operator are installed in this venv."""
    numpy = probe(tmp_path / "lib", "import numpy")
    assert numpy.returncode != 0 and "not installed with kubectl-mlops" in numpy.stderr
    (wheel,) = dist.glob("kubectl_mlops-*.whl")
    zipfile.ZipFile(wheel).extractall(tmp_path / "lib")
    where = probe(tmp_path / "lib", "import mlops_operator.plugin as p; print(p.__file__)")
    assert where.stdout.strip().startswith(str(tmp_path / "lib")), where


def test_the_wheel_needs_three_libraries_and_runs_without_the_ml_stack(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("kubectl_mlops-*.whl")
    with zipfile.ZipFile(wheel) as z:
        info = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(z.read(info).decode())
        entry_points = z.read(info.replace("METADATA", "entry_points.txt")).decode()
        z.extractall(tmp_path / "lib")
    assert metadata["Version"] == __version__
    requires = sorted(r.split(">")[0].split("<")[0].lower() for r in metadata.get_all("Requires-Dist") or [])
    assert requires == ["kubernetes", "pydantic", "pyyaml"]
    assert "kubectl-mlops = mlops_operator.plugin:main" in entry_points
    done = run_blocked(tmp_path / "lib", "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"kubectl mlops {__version__}"
    kubeconfig = unreachable_kubeconfig(tmp_path)
    done = run_blocked(tmp_path / "lib", "status", "ds", "-A", "--kubeconfig", str(kubeconfig))
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr  # one line, no traceback
    assert "not installed with kubectl-mlops" not in done.stderr


def test_the_krew_archive_runs_through_krews_symlink_and_its_manifest_names_it(dist: Path, tmp_path: Path) -> None:
    manifest = yaml.safe_load((dist / "krew" / "mlops.yaml").read_text())
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin" and manifest["metadata"]["name"] == "mlops"
    assert manifest["spec"]["version"] == f"v{__version__}"
    assert manifest["spec"]["shortDescription"] and manifest["spec"]["caveats"]
    (archive,) = (dist / "krew").glob("kubectl-mlops-*.tar.gz")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    platforms = manifest["spec"]["platforms"]
    assert {(p["selector"]["matchLabels"]["os"], p["selector"]["matchLabels"]["arch"]) for p in platforms} == {
        (os_, arch) for os_ in ("linux", "darwin") for arch in ("amd64", "arm64")
    }
    assert all(p["sha256"] == sha and p["uri"].endswith(archive.name) for p in platforms)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "plugin", filter="data")
    launcher = tmp_path / "plugin" / platforms[0]["bin"]
    assert os.access(launcher, os.X_OK)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "kubectl-mlops").symlink_to(launcher)  # krew links the bin into its bin directory
    done = run_blocked(tmp_path / "plugin" / "lib", "--version", launcher=tmp_path / "bin" / "kubectl-mlops")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"kubectl mlops {__version__}"
