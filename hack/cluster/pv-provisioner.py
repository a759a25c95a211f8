#!/usr/bin/env python3
"""Dynamic provisioner for the StorageClass `mlops-local` of the local cluster (stdlib only).

Runs on the host next to the kubelet (started and stopped by hack/cluster-up.sh / cluster-down.sh).
Every second it
  * gives each Pending PVC of the class a hostPath PersistentVolume under /var/lib/mlops-cluster/pv/
    (directory mode 0777, because hostPath volumes ignore fsGroup and the workloads run as uid 10001),
    pre-bound to the claim through claimRef;
  * deletes Released volumes it provisioned (reclaimPolicy Delete), directory included.
It only talks to the local kube-apiserver. Usage: pv-provisioner.py STATE_DIR
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import sys
import time
import urllib.error
import urllib.request

PROVISIONER = "mlops.dev/hostpath"
CLASS = "mlops-local"


def main() -> None:
    state = sys.argv[1] if len(sys.argv) > 1 else "/var/lib/mlops-cluster"
    pki = os.path.join(state, "pki")
    root = os.path.join(state, "pv")
    server = os.environ.get("APISERVER", "https://10.88.0.1:6443")
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
    ctx.load_cert_chain(os.path.join(pki, "admin.crt"), os.path.join(pki, "admin.key"))

    def call(method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(server + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return json.loads(resp.read() or b"{}")

    os.makedirs(root, exist_ok=True)
    print(f"pv-provisioner: {PROVISIONER} for class {CLASS}, volumes under {root}", flush=True)
    while True:
        try:
            reconcile(call, root)
        except (urllib.error.URLError, OSError, ValueError) as e:
            print(f"pv-provisioner: {e}", flush=True)
        time.sleep(1)


def reconcile(call, root: str) -> None:  # type: ignore[no-untyped-def]
    pvs = call("GET", "/api/v1/persistentvolumes")["items"]
    names = {pv["metadata"]["name"] for pv in pvs}
    for pvc in call("GET", "/api/v1/persistentvolumeclaims")["items"]:
        spec, meta = pvc["spec"], pvc["metadata"]
        if spec.get("storageClassName") != CLASS or spec.get("volumeName"):
            continue
        if pvc.get("status", {}).get("phase") != "Pending" or meta.get("deletionTimestamp"):
            continue
        name = "pvc-" + meta["uid"]
        if name in names:
            continue
        path = os.path.join(root, name)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o777)
        size = spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")
        pv = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": name,
                "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER},
                "labels": {"mlops.dev/provisioner": "hostpath"},
            },
            "spec": {
                "capacity": {"storage": size},
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": CLASS,
                "volumeMode": spec.get("volumeMode", "Filesystem"),
                "hostPath": {"path": path, "type": "Directory"},
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": meta["namespace"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        call("POST", "/api/v1/persistentvolumes", pv)
        print(f"pv-provisioner: {name} for {meta['namespace']}/{meta['name']} ({size})", flush=True)
    for pv in pvs:
        meta = pv["metadata"]
        if meta.get("annotations", {}).get("pv.kubernetes.io/provisioned-by") != PROVISIONER:
            continue
        if pv.get("status", {}).get("phase") not in ("Released", "Failed"):
            continue
        if pv["spec"].get("persistentVolumeReclaimPolicy") != "Delete":
            continue
        path = pv["spec"].get("hostPath", {}).get("path", "")
        if os.path.dirname(path) == root:
            shutil.rmtree(path, ignore_errors=True)
        try:
            call("DELETE", "/api/v1/persistentvolumes/" + meta["name"])
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
        print(f"pv-provisioner: deleted {meta['name']}", flush=True)


if __name__ == "__main__":
    main()
