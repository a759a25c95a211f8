#!/usr/bin/env bash
# Peer libraries for the drift benchmark, each in its own venv outside the repo (never in .venv):
#   /var/tmp/drift-bench-venv:  NannyML 0.13.1 + Evidently 0.7.23, on our numpy (the exact version in .venv)
#                               and pandas < 3 (Evidently 0.7.23 imports a pandas internal that pandas 3 removed)
#   /var/tmp/drift-bench-alibi: alibi-detect 0.13.0, which pins numpy < 2, so it runs on numpy 1.26
# Our engine and plain scipy run from the project's .venv. run.py records, per tool, the numpy,
# scipy, scikit-learn, pandas and pyarrow versions the worker process actually imported.
set -euo pipefail
cd "$(dirname "$0")/../.."
NUMPY=$(.venv/bin/python -c 'import numpy; print(numpy.__version__)')
PEER_VENV=${PEER_VENV:-/var/tmp/drift-bench-venv}
ALIBI_VENV=${ALIBI_VENV:-/var/tmp/drift-bench-alibi}

"$PEER_VENV/bin/python" -c 'import nannyml, evidently, pandas; assert int(pandas.__version__.split(".")[0]) < 3' \
  2>/dev/null || {
  python3 -m venv "$PEER_VENV"
  "$PEER_VENV/bin/pip" install -q "numpy==$NUMPY" 'pandas<3' nannyml==0.13.1 evidently==0.7.23
}
"$ALIBI_VENV/bin/python" -c 'import alibi_detect' 2>/dev/null || {
  python3 -m venv "$ALIBI_VENV"
  "$ALIBI_VENV/bin/pip" install -q 'numpy<2' alibi-detect==0.13.0
}
for py in "$PEER_VENV/bin/python" "$ALIBI_VENV/bin/python"; do
  "$py" -c 'import importlib.metadata as m, sys
names = ("nannyml", "evidently", "alibi-detect", "numpy", "scipy", "scikit-learn", "pandas", "pyarrow")
def v(n):
    try:
        return m.version(n)
    except m.PackageNotFoundError:
        return None
print(sys.prefix, {n: v(n) for n in names if v(n)})'
done
