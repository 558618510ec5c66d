"""ociimage.testing.images and .push: the standard test images, pushed to the real registry."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from typing import Any

import httpx
import pytest

from ociimage.testing import (
    BUSYBOX,
    LocalRegistry,
    PushedImage,
    TestImages,
    busybox_image,
    layered_whiteout_image,
    multiplatform_index,
    user_env_image,
)
from ociimage.testing.images import BUSYBOX_APPLETS, LAYERED_ABSENT, USER_ENV_CONFIG

needs_busybox = pytest.mark.binaries(str(BUSYBOX))
ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def get_manifest(registry: LocalRegistry, repo: str, ref: str) -> httpx.Response:
    response = httpx.get(f"{registry.url}/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})
    assert response.status_code == 200, response.text
    return response


def get_blob(registry: LocalRegistry, repo: str, digest: str) -> bytes:
    response = httpx.get(f"{registry.url}/v2/{repo}/blobs/{digest}", follow_redirects=True)
    assert response.status_code == 200, response.text
    assert sha256(response.content) == digest
    return response.content


def tar_names(layer_blob: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer_blob)), mode="r:") as tar:
        return tar.getnames()


def check_round_trip(registry: LocalRegistry, image: PushedImage) -> dict[str, Any]:
    response = get_manifest(registry, image.repository, image.tag)
    assert response.headers["content-type"] == "application/vnd.oci.image.manifest.v1+json"
    assert sha256(response.content) == image.manifest_digest
    assert response.headers["docker-content-digest"] == image.manifest_digest
    assert (
        get_manifest(registry, image.repository, image.manifest_digest).content == response.content
    )
    manifest = json.loads(response.content)
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert manifest["config"]["digest"] == image.config_digest
    config_bytes = get_blob(registry, image.repository, image.config_digest)
    assert manifest["config"]["size"] == len(config_bytes)
    config: dict[str, Any] = json.loads(config_bytes)
    assert [layer["digest"] for layer in manifest["layers"]] == list(image.layer_digests)
    for descriptor, diff_id in zip(manifest["layers"], image.diff_ids, strict=True):
        assert descriptor["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
        blob = get_blob(registry, image.repository, descriptor["digest"])
        assert len(blob) == descriptor["size"]
        assert sha256(gzip.decompress(blob)) == diff_id
    assert config["rootfs"] == {"type": "layers", "diff_ids": list(image.diff_ids)}
    assert config["created"] == "2024-01-01T00:00:00Z"
    non_empty = [h for h in config["history"] if not h.get("empty_layer")]
    assert len(non_empty) == len(manifest["layers"])
    assert config["os"] == image.platform.os
    assert config["architecture"] == image.platform.architecture
    assert config == image.config_doc
    return config


def test_every_image_round_trips(registry: LocalRegistry, test_images: TestImages) -> None:
    assert len(test_images.images) == 5
    for image in test_images.images:
        assert image.reference == f"{registry.host}/{image.repository}:{image.tag}"
        assert image.digest_reference.endswith("@" + image.manifest_digest)
        check_round_trip(registry, image)


def test_busybox_image(registry: LocalRegistry, test_images: TestImages) -> None:
    image = test_images.busybox
    assert len(image.layer_digests) == 1
    config = check_round_trip(registry, image)
    assert config["config"]["Cmd"] == ["sh"]
    names = tar_names(get_blob(registry, image.repository, image.layer_digests[0]))
    assert "bin/busybox" in names
    tree = image.tree
    assert tree.content("bin/busybox") == BUSYBOX.read_bytes()
    assert tree.mode("/bin/busybox") == 0o755
    for applet in ("sh", "ls", "cat", "id", "sleep", "echo", "env", "pwd", "hostname"):
        assert applet in BUSYBOX_APPLETS
        assert tree.symlinks[f"bin/{applet}"] == "busybox"
        assert f"bin/{applet}" in names
    assert tree.mode("tmp") == 0o1777


def test_layered_image_top_layer_has_whiteouts(
    registry: LocalRegistry, test_images: TestImages
) -> None:
    image = test_images.layered
    assert len(image.layer_digests) == 3
    assert image.layer_digests[0] == test_images.busybox.layer_digests[0], "shared base layer"
    top = tar_names(get_blob(registry, image.repository, image.layer_digests[2]))
    assert "data/.wh.remove-me.txt" in top
    assert "data/.wh.gone-dir" in top
    assert "bin/.wh.wget" in top
    assert "opaque-dir/.wh..wh..opq" in top
    assert "opaque-dir/new.txt" in top
    middle = tar_names(get_blob(registry, image.repository, image.layer_digests[1]))
    assert {"data/remove-me.txt", "data/gone-dir/inner.txt", "opaque-dir/old-a.txt"} <= set(middle)
    tree = image.tree
    assert tree.absent == frozenset(LAYERED_ABSENT)
    assert not tree.absent & set(tree.entries)
    assert tree.content("data/keep.txt") == b"kept from layer 2\n"
    assert tree.content("data/added.txt") == b"added by layer 3\n"
    assert sorted(p for p in tree.entries if p.startswith("opaque-dir/")) == ["opaque-dir/new.txt"]
    assert "bin/ls" in tree.symlinks
    assert not any(".wh." in p for p in tree.entries)


def test_user_env_image(registry: LocalRegistry, test_images: TestImages) -> None:
    image = test_images.user_env
    config = check_round_trip(registry, image)["config"]
    assert isinstance(config, dict)
    assert config["User"] == "1000:1000"
    assert config["Entrypoint"] == ["/bin/echo", "entrypoint"]
    assert config["Cmd"] == ["from-cmd", "second arg"]
    assert config["WorkingDir"] == "/srv/app"
    assert "GREETING=hello world" in config["Env"]
    assert config["Env"][0].startswith("PATH=")
    assert config["Labels"]["io.crid.test.role"] == "user-env"
    assert config == dict(USER_ENV_CONFIG)
    tree = image.tree
    assert b"app:x:1000:1000:" in tree.content("etc/passwd")
    assert b"app:x:1000:" in tree.content("/etc/group")
    assert tree.owner("srv/app") == (1000, 1000)
    assert tree.owner("srv/app/hello.txt") == (1000, 1000)
    assert tree.owner("bin/busybox") == (0, 0)


def test_multiplatform_index(registry: LocalRegistry, test_images: TestImages) -> None:
    index = test_images.multiplatform
    response = get_manifest(registry, index.repository, index.tag)
    assert response.headers["content-type"] == "application/vnd.oci.image.index.v1+json"
    assert sha256(response.content) == index.digest
    doc = json.loads(response.content)
    assert doc["schemaVersion"] == 2
    assert doc["mediaType"] == "application/vnd.oci.image.index.v1+json"
    platforms = {(m["platform"]["os"], m["platform"]["architecture"]) for m in doc["manifests"]}
    assert platforms == {("linux", "amd64"), ("linux", "arm64")}
    for descriptor in doc["manifests"]:
        child = get_manifest(registry, index.repository, descriptor["digest"])
        assert len(child.content) == descriptor["size"]
        assert descriptor["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
        arch = descriptor["platform"]["architecture"]
        assert index.for_platform(arch).manifest_digest == descriptor["digest"]
    arm64 = index.for_platform("arm64")
    assert arm64.platform.variant == "v8"
    if test_images.busybox.platform.architecture == "amd64":
        amd64 = index.for_platform("amd64")
        assert amd64.layer_digests == test_images.busybox.layer_digests
        assert list(arm64.tree.files) == ["etc/crid-test-arch"]


@needs_busybox
def test_builders_are_deterministic() -> None:
    for build in (busybox_image, layered_whiteout_image, user_env_image):
        assert build().manifest_digest == build().manifest_digest
    assert multiplatform_index().digest == multiplatform_index().digest
    assert busybox_image(tag="other").manifest_digest == busybox_image().manifest_digest
