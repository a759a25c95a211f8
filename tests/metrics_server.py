"""A real HTTP server on 127.0.0.1 serving a model server's own /metrics exposition, which the
canary and shadow analysis reads: shared by the unit and integration rollout tests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mlops_operator.workloads.serve.metrics import ServeMetrics
from mlops_operator.workloads.serve.mirror import ShadowMetrics


class MetricsServer:
    """A real HTTP server on 127.0.0.1 whose /metrics is a model server's exposition."""

    def __init__(self) -> None:
        self.metrics = ServeMetrics()
        self.shadow = ShadowMetrics(self.metrics.registry)
        metrics = self.metrics

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = metrics.exposition()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answered(self, ok: int, errors: int = 0, seconds: float = 0.003) -> None:
        for _ in range(ok):
            self.metrics.observe_request("infer", 200, seconds)
        for _ in range(errors):
            self.metrics.observe_request("infer", 500, seconds)

    def mirrored(self, requests: int, rows: int, agreed: int, failed: int = 0) -> None:
        """What a champion's mirror counts (serve/mirror.py's own counters)."""
        self.shadow.mirrored.inc(requests)
        self.shadow.failed.inc(failed)
        self.shadow.compared_rows.inc(rows)
        self.shadow.agreed_rows.inc(agreed)


@contextlib.contextmanager
def metrics_servers() -> Iterator[tuple[MetricsServer, MetricsServer]]:
    """A candidate's and a champion's pod, shut down afterwards (the tests' fixtures)."""
    pair = (MetricsServer(), MetricsServer())
    try:
        yield pair
    finally:
        for server in pair:
            server.httpd.shutdown()
            server.httpd.server_close()
