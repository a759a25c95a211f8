#!/usr/bin/env bash
# Reproduce benchmarks/drift/results.json and README.md: peers' venvs, then every tool at 10k, 100k
# and 1M rows per side (about 25 minutes on 2 cores, Evidently at 1M most of it).
set -euo pipefail
cd "$(dirname "$0")/../.."
benchmarks/drift/setup.sh
.venv/bin/python benchmarks/quiet.py --wait 900  # let the installs' load decay (run.py refuses above 1.0)
.venv/bin/python benchmarks/drift/run.py
.venv/bin/python benchmarks/drift/readme.py
