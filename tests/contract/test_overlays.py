"""The kustomize overlays do what their names say.

- kind: the claim takes the cluster's default StorageClass (no storageClassName anywhere).
- aks: Azure Blob with workload identity, the same objects as the chart with store.type=azure.
- both: one image change (what `kustomize edit set image` writes) moves the operator's image and
  the workloads' (`MLOPS_IMAGE`) together.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.contract.test_chart import by_kind, key, kustomize, render, sync_base, walk

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = REPO / "manifests" / "overlays"
IMAGE = "localhost/mlops-operator"
AZURE = {
    "storageAccount": "mlopsdata",
    "storeUri": "az://artifacts/prod",
    "clientId": "11111111-2222-3333-4444-555555555555",
}


def copy_manifests(tmp_path: Path) -> Path:
    """A copy of manifests/ to edit (overlays refer to ../../base)."""
    target = tmp_path / "manifests"
    shutil.copytree(REPO / "manifests", target)
    return target


def set_image(overlay: Path, new_name: str, *, tag: str | None = None, digest: str | None = None) -> None:
    """What `kustomize edit set image localhost/mlops-operator=<new_name>:<tag>|@<digest>` writes."""
    path = overlay / "kustomization.yaml"
    kustomization = yaml.safe_load(path.read_text())
    entry: dict[str, str] = {"name": IMAGE, "newName": new_name}
    entry |= {"newTag": tag} if tag else {"digest": digest or ""}
    kustomization["images"] = [i for i in kustomization.get("images", []) if i["name"] != IMAGE] + [entry]
    path.write_text(yaml.safe_dump(kustomization, sort_keys=False))


def operator_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def env_of(objects: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in operator_container(objects)["env"]}


def sorted_env(obj: dict[str, Any]) -> dict[str, Any]:
    """Env order carries no meaning; a strategic merge patch appends what it adds."""
    if obj["kind"] == "Deployment":
        for container in obj["spec"]["template"]["spec"]["containers"]:
            container["env"] = sorted(container["env"], key=lambda e: e["name"])
    return obj


# --- kind ----------------------------------------------------------------------------------------------


def test_kind_overlay_leaves_the_storage_class_to_the_cluster(kubectl: str) -> None:
    objects = kustomize(kubectl, OVERLAYS / "kind")
    (claim,) = [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    assert "storageClassName" not in claim["spec"]
    assert not [n for o in objects for n in walk(o) if isinstance(n, dict) and "storageClassName" in n]
    # the claims the operator creates in workload namespaces follow the same rule
    assert env_of(objects)["MLOPS_STORE_STORAGE_CLASS"] == ""


def test_kind_overlay_is_the_base_with_its_image(kubectl: str) -> None:
    assert kustomize(kubectl, OVERLAYS / "kind") == kustomize(kubectl, REPO / "manifests" / "base")


# --- aks -------------------------------------------------------------------------------------------------


def aks_filled_in(tmp_path: Path, repository: str, tag: str) -> Path:
    """The aks overlay with azure.yaml and the image filled in, as its comments ask."""
    overlay = copy_manifests(tmp_path) / "overlays" / "aks"
    values = yaml.safe_load((overlay / "azure.yaml").read_text())
    values["data"] = dict(AZURE)
    (overlay / "azure.yaml").write_text(yaml.safe_dump(values))
    set_image(overlay, repository, tag=tag)
    return overlay


def test_aks_overlay_renders_what_the_chart_renders_for_azure_blob(helm: str, kubectl: str, tmp_path: Path) -> None:
    repository, tag = "mlopsacr.azurecr.io/mlops-operator", "0.1.0"
    overlay = [o for o in kustomize(kubectl, aks_filled_in(tmp_path, repository, tag)) if o["kind"] != "Namespace"]
    chart = render(
        helm,
        *("--set", "store.type=azure", "--set", f"store.azure.storageAccount={AZURE['storageAccount']}"),
        *("--set", "store.azure.container=artifacts", "--set", "store.azure.prefix=prod"),
        *("--set", f"store.azure.clientId={AZURE['clientId']}"),
        *("--set", f"image.repository={repository}", "--set-string", f"image.tag={tag}"),
        "--include-crds",
    )
    chart_by_key = {key(o): sorted_env(sync_base.strip_helm_labels(o)) for o in chart}
    overlay_by_key = {key(o): sorted_env(o) for o in overlay}
    assert sorted(overlay_by_key) == sorted(chart_by_key)
    for k, obj in chart_by_key.items():
        assert overlay_by_key[k] == obj, f"{k} differs from the chart's"


def test_aks_overlay_is_blob_with_workload_identity(kubectl: str, tmp_path: Path) -> None:
    objects = kustomize(kubectl, aks_filled_in(tmp_path, "mlopsacr.azurecr.io/mlops-operator", "0.1.0"))
    assert not [o for o in objects if o["kind"] in ("PersistentVolumeClaim", "ConfigMap")]  # azure.yaml stays local
    env = env_of(objects)
    assert env["MLOPS_STORE_URI"] == "az://artifacts/prod" and env["MLOPS_STORE_CLAIM"] == ""
    assert env["AZURE_STORAGE_ACCOUNT_NAME"] == "mlopsdata"
    assert env["MLOPS_AZURE_CLIENT_ID"] == AZURE["clientId"]
    assert not {"MLOPS_STORE_STORAGE_CLASS", "MLOPS_STORE_SIZE", "MLOPS_STORE_ACCESS_MODES"} & set(env)
    accounts = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ServiceAccount"}
    assert set(accounts) == {"mlops-operator", "mlops-workload", "mlops-serving"}
    for name in ("mlops-workload", "mlops-serving"):
        assert accounts[name]["metadata"]["annotations"] == {"azure.workload.identity/client-id": AZURE["clientId"]}
    # the operator never reads the store: no client id on its account, no token in its pod
    assert "annotations" not in accounts["mlops-operator"]["metadata"]
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    assert "azure.workload.identity/use" not in deployment["spec"]["template"]["metadata"]["labels"]
    assert "envFrom" not in operator_container(objects)


def test_aks_overlay_as_shipped_shows_every_placeholder(kubectl: str) -> None:
    objects = kustomize(kubectl, OVERLAYS / "aks")
    env = env_of(objects)
    assert env["AZURE_STORAGE_ACCOUNT_NAME"] == "<storage-account>"
    assert env["MLOPS_STORE_URI"] == "az://<container>/mlops"
    assert env["MLOPS_AZURE_CLIENT_ID"] == "<managed-identity-client-id>"
    assert operator_container(objects)["image"] == "<registry>.azurecr.io/mlops-operator:0.1.0"


# --- both: the image ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["kind", "aks"])
@pytest.mark.parametrize(
    ("new_name", "tag", "digest", "image"),
    [
        ("registry.example/mlops/operator", "1.2.3", None, "registry.example/mlops/operator:1.2.3"),
        (
            "registry.example/mlops/operator",
            None,
            "sha256:" + "ab" * 32,
            "registry.example/mlops/operator@sha256:" + "ab" * 32,
        ),
    ],
    ids=["tag", "digest"],
)
def test_an_image_change_moves_the_operator_and_its_workloads(
    kubectl: str, tmp_path: Path, name: str, new_name: str, tag: str | None, digest: str | None, image: str
) -> None:
    overlay = copy_manifests(tmp_path) / "overlays" / name
    set_image(overlay, new_name, tag=tag, digest=digest)
    objects = kustomize(kubectl, overlay)
    assert operator_container(objects)["image"] == env_of(objects)["MLOPS_IMAGE"] == image
    assert env_of(objects)["MLOPS_IMAGE_PULL_POLICY"] == "IfNotPresent"  # [name=MLOPS_IMAGE] matched it too
    assert by_kind(tuple(objects), "Deployment")
