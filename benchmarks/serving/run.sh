#!/usr/bin/env bash
# Reproduce benchmarks/serving/results.json and the README table (about 15 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
benchmarks/serving/setup.sh
.venv/bin/python benchmarks/quiet.py --wait 900  # let the installs' load decay (bench.py refuses above 1.0)
.venv/bin/python benchmarks/serving/bench.py --duration "${DURATION:-5}" --repeats "${REPEATS:-3}" --out benchmarks/serving/results.json
.venv/bin/python benchmarks/serving/make_table.py benchmarks/serving/results.json --write benchmarks/serving/README.md
