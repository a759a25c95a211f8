"""Every top-level module of the package sits in an import-linter contract, so a new module cannot
slip outside the layering unnoticed (`lint-imports` itself runs in test_layout.py)."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "operator" / "mlops_operator"


def top_level_modules() -> set[str]:
    names = {p.stem for p in PACKAGE.glob("*.py") if p.stem not in {"__init__", "__main__"}}
    names |= {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    return {f"mlops_operator.{name}" for name in names}


def modules_in_contracts() -> set[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    named: set[str] = set()
    for contract in config:
        entries = [*contract.get("layers", []), *contract.get("source_modules", []), *contract.get("modules", [])]
        for entry in entries:
            named |= {part.strip() for part in entry.split("|")}
    return {".".join(name.split(".")[:2]) for name in named if name.startswith("mlops_operator.")}


def test_every_top_level_module_is_in_a_contract() -> None:
    missing = top_level_modules() - modules_in_contracts()
    assert not missing, f"add these to an import-linter contract in pyproject.toml: {sorted(missing)}"


def test_the_check_sees_the_package() -> None:
    # guards the test above against passing vacuously (a moved package would make both sets empty)
    assert {"mlops_operator.reconcilers", "mlops_operator.workloads", "mlops_operator.api"} <= top_level_modules()
