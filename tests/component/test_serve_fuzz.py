"""Fuzz of the model server (issue 12 item 8): over 10,000 requests, no answer ≥ 500, every error
JSON, and the server's memory flat.

Two real `mlops-operator serve` processes on 127.0.0.1, serving real trained pipelines: a numeric
one (the fast path) and one with categorical columns (the DataFrame path). Three sources:
- schemathesis, positive and negative, against the server's own OpenAPI document
  (`workloads/serve/openapi.json`, after KServe's published V2 REST document);
- Hypothesis requests that know the V2 structure and the model's features, so they reach deep
  validation, with wild values at every level;
- hand-written hostile requests (`_fuzzing.hostile_http`, and `hostile_raw` over a raw socket).
RSS (VmRSS) is read after a warm-up that sends every hostile request once, and at the end.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import mlops_operator.workloads.serve as serve_package
from tests.procfs import vm_rss_kib

from ._fuzzing import Tally, Target, hostile_http, hostile_raw, http_request, send, send_raw
from ._serving import ServerProcess, build_models

pytestmark = pytest.mark.slow
SEED = int(os.environ.get("MLOPS_FUZZ_SEED", "20261201"))
SCHEMATHESIS_CASES = int(
    os.environ.get("MLOPS_FUZZ_SCHEMATHESIS", "100")
)  # per generation mode and model: slow to generate (~50 ms a case here)
HYPOTHESIS_CASES = int(os.environ.get("MLOPS_FUZZ_HYPOTHESIS", "6000"))
HOSTILE_ROUNDS = int(os.environ.get("MLOPS_FUZZ_HOSTILE_ROUNDS", "40"))  # each: every hostile request once per model
MIN_REQUESTS, MAX_RSS_GROWTH = 10_000, 0.10
OPENAPI = Path(serve_package.__file__).with_name("openapi.json")
CONFORMANCE = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[Target, ServerProcess]]]:
    models = build_models(Path(tmp_path_factory.mktemp("models")))
    started = []
    try:
        for name in ("breast_cancer", "mixed"):
            # with a labels store, so the feedback endpoint is fuzzed too
            labels = (Path(tmp_path_factory.mktemp("labels")) / name).as_uri()
            started.append((models[name], ServerProcess(models[name], "--labels-uri", labels)))
        out = []
        for trained, process in started:
            process.wait_ready()
            row = tuple(json.loads(trained.X.iloc[[0]].to_json(orient="records"))[0].values())
            features = tuple((c, trained.X[c].dtype.kind not in "fi") for c in trained.X.columns)
            out.append((Target(trained.name, process.url, process.port, features, row), process))
        yield out
    finally:
        for _, process in started:
            process.kill()


def test_fuzz_never_gets_a_5xx_and_memory_stays_flat(targets: list[tuple[Target, ServerProcess]]) -> None:
    tally, started = Tally(), time.monotonic()
    # Pooled connections idle for 1 s are not reused: the server closes idle ones after 5 s, and a
    # request sent just as it does would fail on the client's side (no server's fault).
    limits = httpx.Limits(keepalive_expiry=1.0)
    clients = {t.name: httpx.Client(base_url=t.url, timeout=30, limits=limits) for t, _ in targets}
    try:
        _warm_up(targets, clients)
        rss_before = {t.name: vm_rss_kib(p.proc.pid) for t, p in targets}
        phases = {"warm-up": round(time.monotonic() - started, 1)}
        for phase, run in [
            ("schemathesis", lambda: _schemathesis(targets, tally)),
            ("hypothesis", lambda: _hypothesis(targets, clients, tally)),
            ("hostile", lambda: _hostile(targets, clients, tally, HOSTILE_ROUNDS)),
        ]:
            phase_started = time.monotonic()
            run()
            phases[phase] = round(time.monotonic() - phase_started, 1)
        for t, _ in targets:  # still serving
            assert clients[t.name].get("/v2/health/ready").status_code == 200
        rss_after = {t.name: vm_rss_kib(p.proc.pid) for t, p in targets}
    finally:
        for client in clients.values():
            client.close()
    by_source: dict[str, int] = {}
    for (source, _), n in tally.counts.items():
        by_source[source] = by_source.get(source, 0) + n
    report = {
        "requests": tally.total,
        "by_source": by_source,
        "statuses": {str(s): n for s, n in sorted(_by_status(tally).items())},
        "5xx": tally.server_errors(),
        "rss_kib_before": rss_before,
        "rss_kib_after": rss_after,
        "seconds": round(time.monotonic() - started, 1),
        "phase_seconds": phases,
    }
    print("fuzz:", json.dumps(report))
    assert tally.server_errors() == 0 and not tally.broken, "\n".join(tally.broken)
    assert tally.total >= MIN_REQUESTS, report
    for name, before in rss_before.items():
        assert rss_after[name] <= before * (1 + MAX_RSS_GROWTH), report


def _by_status(tally: Tally) -> dict[int, int]:
    out: dict[int, int] = {}
    for (_, status), n in tally.counts.items():
        out[status] = out.get(status, 0) + n
    return out


def _warm_up(targets: list[tuple[Target, ServerProcess]], clients: dict[str, httpx.Client]) -> None:
    """Reach the working set first: every hostile request once, and valid predictions."""
    _hostile(targets, clients, Tally(), 1)
    for target, _ in targets:
        records = [dict(zip(target.feature_names, target.row, strict=True))] * 20
        for _ in range(100):
            assert clients[target.name].post("/predict", json={"records": records}).status_code == 200


def _schemathesis(targets: list[tuple[Target, ServerProcess]], tally: Tally) -> None:
    schema = schemathesis.openapi.from_dict(json.loads(OPENAPI.read_text()))
    for target, _ in targets:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _schemathesis_run(schema, target, mode, tally)


def _schemathesis_run(schema: Any, target: Target, mode: GenerationMode, tally: Tally) -> None:
    path_parameters = {"model_name": target.name, "model_version": "3"}

    @seed(SEED)
    @settings(**_SETTINGS, max_examples=SCHEMATHESIS_CASES)
    @given(case=schema.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def run(case: Any) -> None:
        with requests.Session() as session:  # a connection per case: ~100 ms to generate one anyway
            r = case.call(base_url=target.url, session=session, timeout=30)
        content_type = (r.headers.get("content-type") or [""])[0]
        tally.record(f"schemathesis-{mode.value}", r.status_code, content_type, r.content, case)
        try:  # the answer is one the document declares, in the declared form
            case.validate_response(r, checks=CONFORMANCE)
        except Exception as exc:
            tally.broken.append(f"schemathesis: {exc!s:.600} for {case.as_curl_command()[:300]}")

    run()


def _hypothesis(targets: list[tuple[Target, ServerProcess]], clients: dict[str, httpx.Client], tally: Tally) -> None:
    strategy = st.one_of(*(http_request(t).map(lambda r, t=t: (t, r)) for t, _ in targets))

    @seed(SEED)
    @settings(**_SETTINGS, max_examples=HYPOTHESIS_CASES)
    @given(item=strategy)
    def run(item: Any) -> None:
        target, request = item
        send(clients[target.name], tally, "hypothesis", request)

    run()


def _hostile(
    targets: list[tuple[Target, ServerProcess]], clients: dict[str, httpx.Client], tally: Tally, rounds: int
) -> None:
    for i in range(rounds):
        for target, process in targets:
            for request in hostile_http(target, i):
                send(clients[target.name], tally, "hostile", request)
            for data in hostile_raw(target, i):
                send_raw(process.port, tally, "hostile-raw", data)


_SETTINGS: dict[str, Any] = {
    "database": None,
    "deadline": None,
    "phases": [Phase.explicit, Phase.generate],  # no shrinking: a failure is recorded, not minimised
    "suppress_health_check": list(HealthCheck),
}
