"""Golden files for the builders: `pytest tests/unit/builders --update-golden` rewrites them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", default=False, help="rewrite tests/golden/*.yaml"
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, Any], None]:
    update = bool(request.config.getoption("--update-golden", default=False))

    def check(name: str, rendered: Any) -> None:
        path = GOLDEN / f"{name}.yaml"
        text = yaml.safe_dump(rendered, sort_keys=True, width=120)
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            return
        hint = "run: pytest tests/unit/builders --update-golden"
        assert path.exists(), f"no golden file {path}; {hint}"
        assert yaml.safe_load(path.read_text()) == rendered, (
            f"{name} differs from {path}; if the change is intended, {hint}"
        )

    return check
