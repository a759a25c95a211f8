"""Fixtures of the contract tests: the helm and kubectl binaries (hack/build-binaries.sh)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CACHE_BIN = Path("/var/cache/mlops-operator/bin")


def _tool(name: str) -> str:
    for candidate in (CACHE_BIN / name, shutil.which(name)):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.skip(f"{name} is not built yet: run `make binaries`")


@pytest.fixture(scope="session")
def helm() -> str:
    return _tool("helm")


@pytest.fixture(scope="session")
def kubectl() -> str:
    return _tool("kubectl")
