#!/usr/bin/env bash
# Reproduce benchmarks/serving/results.json and the README table (about 12 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
benchmarks/serving/setup.sh
.venv/bin/python benchmarks/serving/bench.py --duration "${DURATION:-5}" --repeats "${REPEATS:-3}" --out benchmarks/serving/results.json
.venv/bin/python benchmarks/serving/make_table.py benchmarks/serving/results.json --write benchmarks/serving/README.md
