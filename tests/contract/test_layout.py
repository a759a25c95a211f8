"""The source root must never become a package that shadows the standard library's `operator`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_operator_dir_is_not_a_package() -> None:
    assert not (REPO / "operator" / "__init__.py").exists()


def test_stdlib_operator_is_not_shadowed() -> None:
    code = "import operator, sys; print(operator.__file__ or 'namespace')"
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert "operator.py" in out or "namespace" not in out


def test_import_layers_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workloads_do_not_import_kopf() -> None:
    code = (
        "import sys, mlops_operator.cli as c\n"
        "import mlops_operator.contracts, mlops_operator.api.results\n"
        "assert 'kopf' not in sys.modules, 'kopf imported by the workload side'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO / "operator", check=True)
