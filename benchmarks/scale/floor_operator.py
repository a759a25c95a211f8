"""The floor: the smallest kopf operator that creates a Job when a Model gets a retrain annotation.

    KUBECONFIG=... python benchmarks/scale/floor_operator.py -n floor-0 -n floor-1 ...

One handler on the `mlops.dev/retrain-requested` annotation of `models.mlops.dev` (the annotation our
operator reacts to) that creates one `batch/v1` Job owned by the Model. No status, no Events, no
other resources: what any kopf operator pays to watch N objects and turn a change into a Job.
benchmarks/scale/bench.py runs it against the same kube-apiserver as our operator, with the same
number of Models, and measures it the same way.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from typing import Any

import kopf
import kubernetes

ANNOTATION = "mlops.dev/retrain-requested"
_batch: kubernetes.client.BatchV1Api | None = None


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    global _batch
    settings.posting.enabled = False  # no k8s Events for every handler run
    kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
    _batch = kubernetes.client.BatchV1Api()


@kopf.on.field("mlops.dev", "v1alpha1", "models", field=("metadata", "annotations", ANNOTATION))
def retrain(name: str, namespace: str, new: str | None, body: kopf.Body, **_: Any) -> None:
    if not new:
        return
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"{name}-train-{hashlib.sha256(new.encode()).hexdigest()[:10]}",
            "labels": {"app.kubernetes.io/component": "train", "mlops.dev/model": name},
        },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/component": "train", "mlops.dev/model": name}},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [
                        {
                            "name": "train",
                            "image": "localhost/floor:bench",
                            "args": ["train", name],
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                                "runAsNonRoot": True,
                            },
                        }
                    ],
                },
            },
        },
    }
    kopf.adopt(job, owner=body)
    assert _batch is not None
    try:
        _batch.create_namespaced_job(namespace, job)
    except kubernetes.client.ApiException as exc:
        if exc.status != 409:  # already created for this request
            raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--namespace", action="append", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    kopf.configure(verbose=False, quiet=True)
    kopf.run(standalone=True, namespaces=args.namespace, clusterwide=False)


if __name__ == "__main__":
    main()
