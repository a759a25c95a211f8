"""builders.tenancy: trainer images on the administrator's list only, Dataset sources confined to the
namespace's own prefix (or an allowed source), and no object store whose one credential every namespace
shares unless the administrator says so. Each refusal names what to change."""

from __future__ import annotations

import pytest

from mlops_operator import conditions as cond
from mlops_operator.api.v1alpha1 import Model
from mlops_operator.builders import tenancy
from mlops_operator.settings import Settings
from tests.unit import factories as f

CUSTOM = {"image": "registry.example.com/team-a/trainer:1.2", "command": ["python", "-c", "evil()"]}
DIGEST = "sha256:" + "a" * 64


def custom_model(image: str) -> Model:
    return f.model(trainer={"image": image, "command": ["train"]})


def test_custom_images_are_refused_unless_allowed() -> None:
    model = f.model(trainer=CUSTOM)
    refused = tenancy.refusal(model, f.SETTINGS)
    assert refused is not None and refused.reason == cond.Reason.IMAGE_NOT_ALLOWED
    assert "trainer.image 'registry.example.com/team-a/trainer:1.2' is not on" in refused.message
    assert "allowed: none" in refused.message and "MLOPS_ALLOWED_TRAINER_IMAGES" in refused.message
    assert tenancy.refusal(f.model(), f.SETTINGS) is None  # an allowlisted estimator needs no image


@pytest.mark.parametrize(
    ("pattern", "image", "allowed"),
    [
        ("registry.example.com/team-a/trainer:1.2", "registry.example.com/team-a/trainer:1.2", True),
        ("registry.example.com/team-a/trainer:1.2", "registry.example.com/team-a/trainer:1.3", False),
        ("registry.example.com/team-a/trainer", "registry.example.com/team-a/trainer:9", True),
        ("registry.example.com/team-a/trainer", f"registry.example.com/team-a/trainer@{DIGEST}", True),
        ("registry.example.com/team-a/trainer", "registry.example.com/team-a/trainer-evil:1", False),
        ("registry.example.com/team-a/*", "registry.example.com/team-a/anything:1", True),
        ("registry.example.com/team-a/*", "registry.example.com/team-b/trainer:1", False),
        ("registry.example.com/team-a/*", "evil.example.com/registry.example.com/team-a/x:1", False),
        (f"registry.example.com/t@{DIGEST}", f"registry.example.com/t@{DIGEST}", True),
        (f"registry.example.com/t@{DIGEST}", "registry.example.com/t:latest", False),
        ("localhost:5000/trainer", "localhost:5000/trainer:1", True),
        ("localhost:5000/trainer", "localhost:5001/trainer:1", False),
    ],
)
def test_image_patterns(pattern: str, image: str, allowed: bool) -> None:
    assert tenancy.image_allowed(image, (pattern,)) is allowed
    settings = Settings(allowed_trainer_images=(pattern,))
    assert (tenancy.refusal(custom_model(image), settings) is None) is allowed


def test_digests_can_be_required() -> None:
    settings = Settings(allowed_trainer_images=("registry.example.com/t",), trainer_image_digest_required=True)
    refused = tenancy.refusal(custom_model("registry.example.com/t:1"), settings)
    assert refused is not None and "must be pinned by digest" in refused.message
    assert tenancy.refusal(custom_model(f"registry.example.com/t@{DIGEST}"), settings) is None


S3 = Settings(store_uri="s3://lake/mlops", store_claim="", store_secret="s3", store_credentials="per-namespace")


@pytest.mark.parametrize(
    ("uri", "settings", "words"),
    [
        ("sklearn://iris", f.SETTINGS, ""),
        ("sklearn://iris?rows=500", f.SETTINGS, ""),
        ("file:///var/lib/mlops/team-a/raw/data.csv", f.SETTINGS, ""),
        ("file:///var/lib/mlops/raw/", f.SETTINGS, ""),  # the claim is the namespace's own
        ("file:///var/lib/mlops/../../proc/self/environ", f.SETTINGS, "no '.' or '..' segments"),
        ("file:///var/lib/mlops/./x.csv", f.SETTINGS, "no '.' or '..' segments"),
        ("file:///etc/passwd", f.SETTINGS, "under /var/lib/mlops/"),
        ("file:///var/lib/mlopsX/x.csv", f.SETTINGS, "under /var/lib/mlops/"),
        ("file:///var/lib/mlops", f.SETTINGS, "under /var/lib/mlops/"),
        ("file:///var/lib/mlops//etc/x.csv", f.SETTINGS, "under /var/lib/mlops/"),
        ("file://host/var/lib/mlops/x.csv", f.SETTINGS, "under /var/lib/mlops/"),
        ("file:///var/lib/mlops/%2e%2e/x.csv", f.SETTINGS, "'%' escapes"),
        ("file:///var/lib/mlops/x.csv?x=1", f.SETTINGS, "no query"),
        ("s3://sales/events/", f.SETTINGS, "outside this namespace's own prefix"),  # node's IAM role
        ("file:///var/lib/mlops/x.csv", S3, "store is not a claim"),
        ("s3://lake/mlops/team-a/raw/", S3, ""),
        ("s3://lake/mlops/team-a", S3, ""),
        ("s3://lake/mlops/team-b/models/clf/registry.json", S3, "outside this namespace's own prefix"),
        ("s3://lake/mlops/team-ab/raw/", S3, "outside this namespace's own prefix"),
        ("s3://lake/mlops/team-a/../team-b/raw/", S3, "no '.' or '..' segments"),
        ("s3://key:secret@lake/mlops/team-a/x.csv", S3, "user"),
        ("s3://public/reference/x.csv", S3, "outside this namespace's own prefix"),
    ],
)
def test_sources_are_confined(uri: str, settings: Settings, words: str) -> None:
    message = tenancy.source_refusal(uri, "team-a", settings)
    assert (words in message and message) if words else message == ""
    dataset = f.dataset(source={"uri": uri})
    refused = tenancy.refusal(dataset, settings)
    assert (refused is not None and refused.reason == cond.Reason.SOURCE_NOT_ALLOWED) is bool(words)


def test_allowed_sources_and_azure_aliases() -> None:
    settings = Settings(
        store_uri="az://data/mlops", store_claim="", store_credentials="per-namespace",
        allowed_sources=("s3://public/reference/", "az://shared/open"),
    )
    assert tenancy.source_refusal("s3://public/reference/x.csv", "team-a", settings) == ""
    assert tenancy.source_refusal("az://shared/open/x.csv", "team-a", settings) == ""
    assert tenancy.source_refusal("abfs://shared/open/x.csv", "team-a", settings) == ""
    assert tenancy.source_refusal("abfs://data/mlops/team-a/x.csv", "team-a", settings) == ""
    refused = tenancy.source_refusal("az://shared/openx/x.csv", "team-a", settings)
    assert "az://data/mlops/team-a/" in refused and "s3://public/reference/, az://shared/open" in refused


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        (f.SETTINGS, ""),  # a claim per namespace
        (Settings(store_uri="s3://lake/m", store_claim="", store_secret="s3"), "nothing says its credentials"),
        (Settings(store_uri="s3://lake/m", store_claim="", store_secret="s3", store_credentials="shared"), ""),
        (Settings(store_uri="s3://lake/m", store_claim="", store_credentials="per-namespace"), ""),
        (Settings(store_uri="az://c/m", store_claim="", azure_client_id="one"), "one workload identity"),
        (Settings(store_uri="az://c/m", store_claim="", azure_client_id="one", store_credentials="per-namespace"),
         "one workload identity"),
        (Settings(store_uri="az://c/m", store_claim="", azure_client_ids=(("team-a", "a"),)), ""),
        (Settings(store_uri="az://c/m", store_claim="", azure_client_ids=(("team-b", "b"),)), "nothing says"),
    ],
)
def test_a_store_shared_by_every_namespace_is_refused_unless_declared(settings: Settings, words: str) -> None:
    message = tenancy.store_refusal("team-a", settings)
    assert (words in message) if words else message == ""
    for resource in (f.dataset(), f.model(), f.monitor()):
        refused = tenancy.refusal(resource, settings)
        assert (refused is not None and refused.reason == cond.Reason.SHARED_STORE_CREDENTIALS) is bool(words)


def test_settings_read_the_tenancy_variables() -> None:
    s = Settings.from_env({
        "MLOPS_ALLOWED_TRAINER_IMAGES": "registry.example.com/team-a/*, registry.example.com/t:1",
        "MLOPS_TRAINER_IMAGE_DIGEST_REQUIRED": "true",
        "MLOPS_ALLOWED_SOURCES": "s3://public/reference/",
        "MLOPS_STORE_CREDENTIALS": "per-namespace",
        "MLOPS_AZURE_CLIENT_IDS": "team-a=aaa, team-b = bbb",
    })
    assert s.allowed_trainer_images == ("registry.example.com/team-a/*", "registry.example.com/t:1")
    assert s.trainer_image_digest_required and s.allowed_sources == ("s3://public/reference/",)
    assert s.store_credentials == "per-namespace" and s.client_id_for("team-b") == "bbb"
    assert s.client_id_for("team-c") == ""


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"MLOPS_STORE_CREDENTIALS": "perNamespace"}, "give per-namespace or shared"),
        ({"MLOPS_ALLOWED_TRAINER_IMAGES": "registry/*/x"}, "'*' only at the end"),
        ({"MLOPS_ALLOWED_SOURCES": "http://x/y"}, "not a file://, s3://"),
        ({"MLOPS_ALLOWED_SOURCES": "s3://"}, "not a file://, s3://"),
        ({"MLOPS_ALLOWED_SOURCES": "s3://b/../c"}, "no '.' or '..'"),
        ({"MLOPS_AZURE_CLIENT_IDS": "team-a"}, "not <namespace>=<client id>"),
    ],
)
def test_bad_tenancy_settings_stop_the_operator(env: dict[str, str], words: str) -> None:
    with pytest.raises(ValueError) as info:
        Settings.from_env(env)
    assert words in str(info.value)
