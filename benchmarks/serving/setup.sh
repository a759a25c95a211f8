#!/usr/bin/env bash
# Servers for the serving benchmark, each in its own venv outside the repo (never in .venv):
#   /var/tmp/bench-mlserver:  MLServer 1.7 + its scikit-learn runtime (1.7.1 crashes at start with uvloop >= 0.22)
#   /var/tmp/bench-kserve:    KServe's Python model server + scikit-learn (KServe's sklearnserver is not on PyPI)
#   /var/tmp/bench-reference: the minimal reference endpoint (reference_server.py): Starlette, plus
#                             uvicorn, httptools, uvloop, orjson, numpy, scikit-learn and joblib pinned to
#                             the exact versions in the project's .venv, so Starlette is the only difference.
# Our server runs from the project's own .venv (Starlette is not installed there). The scikit-learn
# version is pinned to the project's everywhere, so the same fitted model loads in every server.
set -euo pipefail
cd "$(dirname "$0")/../.."
pinned() { .venv/bin/python -c "import importlib.metadata as m; print('$1==' + m.version('$1'))"; }
SKLEARN=$(pinned scikit-learn)
MLSERVER_VENV=${MLSERVER_VENV:-/var/tmp/bench-mlserver}
KSERVE_VENV=${KSERVE_VENV:-/var/tmp/bench-kserve}
REFERENCE_VENV=${REFERENCE_VENV:-/var/tmp/bench-reference}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
[ -x "$MLSERVER_VENV/bin/mlserver" ] || {
  python3 -m venv "$MLSERVER_VENV"
  "$MLSERVER_VENV/bin/pip" install -q mlserver mlserver-sklearn 'uvloop<0.22' "$SKLEARN"
}
[ -x "$KSERVE_VENV/bin/python" ] && "$KSERVE_VENV/bin/python" -c 'import kserve, sklearn' 2>/dev/null || {
  python3 -m venv "$KSERVE_VENV"
  "$KSERVE_VENV/bin/pip" install -q kserve "$SKLEARN" joblib
}
[ -x "$REFERENCE_VENV/bin/python" ] && "$REFERENCE_VENV/bin/python" -c 'import starlette, sklearn' 2>/dev/null || {
  python3 -m venv "$REFERENCE_VENV"
  "$REFERENCE_VENV/bin/pip" install -q starlette "$SKLEARN" $(pinned uvicorn) $(pinned httptools) \
    $(pinned uvloop) $(pinned orjson) $(pinned numpy) $(pinned joblib)
}
echo "ready: wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2), $("$MLSERVER_VENV/bin/mlserver" --version 2>&1 | tail -1)," \
  "kserve $("$KSERVE_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("kserve"))')," \
  "starlette $("$REFERENCE_VENV/bin/python" -c 'import starlette; print(starlette.__version__)')"
