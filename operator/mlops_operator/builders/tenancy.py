"""What a tenant may point the operator at: trainer images, data sources, and a store whose
credentials some other namespace holds too. Pure: typed resource + Settings in, a refusal out.

A tenant who may create Models and Datasets in one namespace must not reach another's data through
the operator's pods (issue 12):

- `image_refusal`: a custom trainer image runs the tenant's own code with the store's credentials,
  so it must be on the administrator's list (MLOPS_ALLOWED_TRAINER_IMAGES; empty: none).
- `source_refusal`: a Dataset reads only the namespace's own prefix of the store
  (`<root>/<namespace>/`), sources the administrator lists (MLOPS_ALLOWED_SOURCES), or the tables
  bundled with scikit-learn. A `file://` source is a path on the namespace's own claim, under the
  mount, with no `.` or `..` segments (symlinks are checked where the files are read:
  workloads.confinement).
- `store_refusal`: an object store whose one credential every namespace's pods get lets each team
  read and poison every other's `<root>/<namespace>/`; unless the administrator declares per-namespace
  credentials (MLOPS_STORE_CREDENTIALS=per-namespace, or a namespace's own workload identity in
  MLOPS_AZURE_CLIENT_IDS) or accepts sharing (MLOPS_STORE_CREDENTIALS=shared), it is refused.
"""

from __future__ import annotations

import posixpath
import re
from typing import Final, NamedTuple

from mlops_operator import conditions as cond
from mlops_operator import contracts
from mlops_operator.api.base import Resource
from mlops_operator.api.v1alpha1.batchscoring import BatchScoring
from mlops_operator.api.v1alpha1.dataset import Dataset
from mlops_operator.api.v1alpha1.model import Model, TrainerSpec
from mlops_operator.settings import Settings

SKLEARN: Final = "sklearn://"
DIGEST: Final = re.compile(r"@sha256:[0-9a-f]{64}$")
# The same Azure container by either scheme (adlfs reads both).
_ALIASES: Final = {"abfs": "az"}
_UNSAFE: Final = re.compile(r"[?#%\\\x00-\x1f\x7f]")
SECURITY_DOC: Final = "docs/security.md"


class Refusal(NamedTuple):
    reason: str
    message: str


def refusal(resource: Resource, settings: Settings) -> Refusal | None:
    """The first thing in `resource` this operator will not do for its namespace (None: nothing)."""
    namespace = resource.namespace
    store = store_refusal(namespace, settings)
    if store:
        return Refusal(cond.Reason.SHARED_STORE_CREDENTIALS, store)
    if isinstance(resource, Model):
        image = image_refusal(resource.spec.trainer, settings)
        if image:
            return Refusal(cond.Reason.IMAGE_NOT_ALLOWED, image)
    if isinstance(resource, Dataset):
        source = source_refusal(resource.spec.source.uri, namespace, settings)
        if source:
            return Refusal(cond.Reason.SOURCE_NOT_ALLOWED, source)
    if isinstance(resource, BatchScoring) and resource.spec.input.uri:
        source = source_refusal(resource.spec.input.uri, namespace, settings, "spec.input.uri")
        if source:
            return Refusal(cond.Reason.SOURCE_NOT_ALLOWED, source)
    return None


# --- trainer images ------------------------------------------------------------------------------
def image_allowed(image: str, patterns: tuple[str, ...]) -> bool:
    """`image` matches a pattern: the same ref; a repository without tag or digest, with any of them;
    or a prefix ending in `*` (`registry.example.com/team-a/*`)."""
    return any(_matches(image, pattern) for pattern in patterns)


def _matches(image: str, pattern: str) -> bool:
    if pattern.endswith("*"):
        return image.startswith(pattern[:-1])
    if _has_tag_or_digest(pattern):
        return image == pattern
    return image == pattern or image.startswith((pattern + ":", pattern + "@"))


def _has_tag_or_digest(ref: str) -> bool:
    return "@" in ref or ":" in ref.rsplit("/", 1)[-1]


def image_refusal(trainer: TrainerSpec, settings: Settings) -> str:
    image = trainer.image
    if image is None:
        return ""
    if not image_allowed(image, settings.allowed_trainer_images):
        allowed = ", ".join(settings.allowed_trainer_images) or "none"
        return (
            f"trainer.image {image!r} is not on this operator's list of trainer images (allowed: {allowed}): "
            "use trainer.estimator, or ask the cluster administrator to allow the image "
            f"(MLOPS_ALLOWED_TRAINER_IMAGES, chart value trainer.allowedImages; {SECURITY_DOC})"
        )
    if settings.trainer_image_digest_required and not DIGEST.search(image):
        return (
            f"trainer.image {image!r} must be pinned by digest (…@sha256:<64 hex>): this operator requires "
            "digests (MLOPS_TRAINER_IMAGE_DIGEST_REQUIRED)"
        )
    return ""


# --- dataset sources -----------------------------------------------------------------------------
def _split(uri: str) -> tuple[str, str]:
    scheme, _, rest = uri.partition("://")
    return _ALIASES.get(scheme, scheme), rest


def _within(uri: str, prefix: str) -> bool:
    """`uri` is `prefix` or under it, segment by segment (s3://b/team-a is not under s3://b/team)."""
    (scheme, path), (p_scheme, p_path) = _split(uri), _split(prefix)
    if scheme != p_scheme:
        return False
    p_path = p_path.rstrip("/")
    return path.rstrip("/") == p_path or path.startswith(p_path + "/")


def own_prefix(namespace: str, settings: Settings) -> str:
    """The namespace's own part of the store (contracts' layout: `<root>/<namespace>/…`), ending in /."""
    return f"{settings.store_uri.rstrip('/')}/{namespace}/"


def source_refusal(uri: str, namespace: str, settings: Settings, field: str = "spec.source.uri") -> str:
    if uri.startswith(SKLEARN):
        return ""
    scheme, path = _split(uri)
    where = f"{field} {uri!r}"
    if _UNSAFE.search(uri) or "@" in path.split("/", 1)[0]:
        return f"{where}: a source URI carries no query, fragment, '%' escapes, backslashes, user or control characters"
    if any(part in (".", "..") for part in path.split("/")):
        return f"{where}: a source URI has no '.' or '..' segments"
    if scheme == "file":
        mount = contracts.STORE_MOUNT_PATH
        if not settings.store_uri.startswith("file://") or not settings.store_claim:
            return f"{where}: this operator's store is not a claim, so a file:// source has nothing to read"
        if posixpath.normpath(path) != path.rstrip("/") or not path.startswith(mount + "/"):
            return f"{where}: a file:// source is a path on the namespace's own claim, under {mount}/"
        return ""
    own = own_prefix(namespace, settings)
    if _within(uri, own) or any(_within(uri, allowed) for allowed in settings.allowed_sources):
        return ""
    listed = ", ".join(settings.allowed_sources) or "none"
    return (
        f"{where} is outside this namespace's own prefix of the store ({own}) and the sources the "
        f"administrator allows ({listed}): copy the data under {own}, or ask the cluster administrator to "
        f"allow the source (MLOPS_ALLOWED_SOURCES, chart value sources.allowed; {SECURITY_DOC})"
    )


# --- the store's credentials ---------------------------------------------------------------------
def store_refusal(namespace: str, settings: Settings) -> str:
    if settings.store_uri.startswith("file://") or settings.store_credentials == "shared":
        return ""  # a claim is the namespace's own; or the administrator accepts one credential for all
    if namespace in dict(settings.azure_client_ids):
        return ""  # the namespace's own workload identity
    if settings.azure_client_id:
        return (
            f"the store {settings.store_uri} is reached with one workload identity for every namespace "
            f"(MLOPS_AZURE_CLIENT_ID), so this namespace's pods could read and overwrite every other team's "
            f"data: give {namespace!r} its own identity (MLOPS_AZURE_CLIENT_IDS, chart value "
            "store.azure.clientIds), or accept sharing (store.credentials: shared); see " + SECURITY_DOC
        )
    if settings.store_credentials == "per-namespace":
        return ""  # each namespace's own Secret, scoped to <root>/<namespace>/
    return (
        f"the store {settings.store_uri} is shared by every namespace, and nothing says its credentials are "
        f"per namespace: give each namespace a Secret (or identity) that reaches only its own prefix and "
        "set store.credentials: perNamespace (MLOPS_STORE_CREDENTIALS=per-namespace), or accept sharing "
        f"(store.credentials: shared); see {SECURITY_DOC}"
    )
