"""Read a model server pod's `/metrics` over HTTP at its pod IP (Canary and Shadow analysis).

Why the pod IP and not the API server's pod proxy: `pods/proxy` would let the operator reach every
port of every pod in the namespaces it manages (the same power as `pods/portforward`, which its RBAC
refuses on purpose: tests/contract/test_rbac.py), and would route every scrape through the API
server. The pod IP needs only what a Prometheus needs: a route to the pod network and a
NetworkPolicy that admits the operator to port 8080 (docs/serving.md). The IP comes from the pod's
status, which only the kubelet writes; the callers take pods whose controller is a ReplicaSet of the
Model's own Deployment.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from typing import Any

MAX_BYTES = 4 * 1024 * 1024
TIMEOUT_SECONDS = 5.0


class ScrapeError(Exception):
    """A pod's metrics could not be read (no IP, refused, timed out, not 200, too large)."""


def url(pod: dict[str, Any], port: int, path: str = "/metrics") -> str:
    ip = str((pod.get("status") or {}).get("podIP") or "")
    if not ip:
        raise ScrapeError(f"pod {pod.get('metadata', {}).get('name')} has no IP yet")
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{int(port)}{path}"


def _get(target: str, timeout: float) -> str:
    # Only http:// URLs built from a pod IP and a port reach here (url() above).
    request = urllib.request.Request(target, headers={"Accept": "text/plain"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read(MAX_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ScrapeError(f"{target}: {exc}") from exc
    if len(body) > MAX_BYTES:
        raise ScrapeError(f"{target}: over {MAX_BYTES} bytes")
    return body.decode("utf-8", errors="replace")


async def pod_metrics(pod: dict[str, Any], port: int, *, timeout: float = TIMEOUT_SECONDS) -> str:
    """The Prometheus text of `pod` on `port`; ScrapeError when it cannot be read."""
    return await asyncio.to_thread(_get, url(pod, port), timeout)
