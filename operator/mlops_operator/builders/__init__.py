"""Pure rendering: typed custom resources + Settings → Kubernetes manifests as plain dicts.

No I/O, no clock, no kopf or client imports (an import-linter contract checks it).
"""
