#!/usr/bin/env bash
# Peer servers for the serving benchmark, each in its own venv outside the repo (never in .venv):
#   /var/tmp/bench-mlserver: MLServer 1.7 + its scikit-learn runtime (1.7.1 crashes at start with uvloop >= 0.22)
#   /var/tmp/bench-kserve:   KServe's Python model server + scikit-learn (KServe's sklearnserver is not on PyPI)
# Our server runs from the project's own .venv. The scikit-learn version is pinned to the project's so
# the same fitted model loads everywhere.
set -euo pipefail
cd "$(dirname "$0")/../.."
SKLEARN=$(.venv/bin/python -c 'import sklearn; print(sklearn.__version__)')
MLSERVER_VENV=${MLSERVER_VENV:-/var/tmp/bench-mlserver}
KSERVE_VENV=${KSERVE_VENV:-/var/tmp/bench-kserve}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
[ -x "$MLSERVER_VENV/bin/mlserver" ] || {
  python3 -m venv "$MLSERVER_VENV"
  "$MLSERVER_VENV/bin/pip" install -q mlserver mlserver-sklearn 'uvloop<0.22' "scikit-learn==$SKLEARN"
}
[ -x "$KSERVE_VENV/bin/python" ] && "$KSERVE_VENV/bin/python" -c 'import kserve, sklearn' 2>/dev/null || {
  python3 -m venv "$KSERVE_VENV"
  "$KSERVE_VENV/bin/pip" install -q kserve "scikit-learn==$SKLEARN" joblib
}
echo "ready: wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2), $("$MLSERVER_VENV/bin/mlserver" --version 2>&1 | tail -1), kserve $("$KSERVE_VENV/bin/python" -c 'import kserve; print(kserve.__version__)')"
