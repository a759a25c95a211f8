"""What the resync relies on, against a real kube-apiserver: a metadata-only listing, and the
resourceVersions one reconcile reads (and writes) recorded as the server returns them."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes import client

from mlops_operator.api.v1alpha1.dataset import Dataset
from mlops_operator.kube import DATASET, Kube, reads
from tests.integration.reconcile_harness import resource


def test_list_metadata_returns_metadata_only_and_reads_record_versions(
    api_client: client.ApiClient, namespace: str, current_crds: None
) -> None:
    kube = Kube(api_client)
    body = resource(Dataset, "d1", {"source": {"uri": "sklearn://breast_cancer"}, "schema": {"target": "target"}})
    body["metadata"]["namespace"] = namespace

    async def scenario() -> tuple[list[dict[str, Any]], reads.Versions, str]:
        created = await kube.create(body)
        with reads.recording() as versions:
            await kube.get(DATASET, namespace, "d1")
            await kube.get(DATASET, namespace, "absent")
            patched = await kube.annotate(DATASET, namespace, "d1", {"example.com/touched": "yes"})
        listed = await kube.list_metadata(DATASET, namespace)
        assert created["metadata"]["resourceVersion"] != patched["metadata"]["resourceVersion"]
        return listed, versions, patched["metadata"]["resourceVersion"]

    listed, versions, latest = asyncio.run(scenario())
    assert [meta["name"] for meta in listed] == ["d1"]
    assert listed[0]["resourceVersion"] == latest  # a metadata list carries versions, no spec
    assert "spec" not in listed[0]
    assert versions == {("Dataset", namespace, "d1"): latest, ("Dataset", namespace, "absent"): ""}
