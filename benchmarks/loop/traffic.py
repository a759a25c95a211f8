"""Shifted scoring traffic for the reaction benchmark: breast-cancer rows, every feature scaled, bounded
in time and rate, sent to the model's ClusterIP from this host (kube-proxy makes it reachable)."""

from __future__ import annotations

import contextlib
import random
import time

import httpx
from kubernetes import client


def service_url(namespace: str, model: str) -> str:
    svc = client.CoreV1Api().read_namespaced_service(model, namespace)
    return f"http://{svc.spec.cluster_ip}:{svc.spec.ports[0].port}"


class Traffic:
    def __init__(self, url: str, model: str) -> None:
        from sklearn.datasets import load_breast_cancer

        data = load_breast_cancer(as_frame=True)
        self.features = list(data.feature_names)
        self.rows = data.data.to_numpy()
        self.url = f"{url}/v2/models/{model}/infer"
        self.http = httpx.Client(timeout=5.0)
        self.rng = random.Random(7)

    def send(self, seconds: float, shift: float, rows_per_request: int = 5, rate_hz: float = 10.0) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            batch = [self.rows[self.rng.randrange(len(self.rows))] * (1.0 + shift) for _ in range(rows_per_request)]
            data = [float(v) for row in batch for v in row]
            body = {
                "inputs": [
                    {"name": "input-0", "shape": [len(batch), len(self.features)], "datatype": "FP64", "data": data}
                ]
            }
            # the benchmark measures the operator; a lost request only thins the window
            with contextlib.suppress(httpx.HTTPError):
                self.http.post(self.url, json=body)
            time.sleep(1.0 / rate_hz)
