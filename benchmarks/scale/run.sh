#!/usr/bin/env bash
# The scale benchmark at N = 1, 100 and 1000 Models, then the README tables (about 4 hours with the
# default 30-minute churn per operator; CHURN=600 for a shorter pass). Each run refuses to start on
# a busy machine (1-minute load average > 1.0): start this on a quiet machine and leave it alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x "${MLOPS_CACHE:-/var/cache/mlops-operator}/bin/kube-apiserver" ] || make binaries
for n in ${SIZES:-1 100 1000}; do
  .venv/bin/python benchmarks/quiet.py --wait 900  # the previous run's load decays first (exit 3 if it does not)
  .venv/bin/python benchmarks/scale/bench.py --models "$n" --churn "${CHURN:-1800}"
done
.venv/bin/python benchmarks/scale/readme.py
