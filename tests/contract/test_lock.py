"""The lock CI and the image install from (requirements/, hash-pinned) matches pyproject.toml."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_lock_matches_pyproject() -> None:
    done = subprocess.run(["hack/check-lock.sh"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
