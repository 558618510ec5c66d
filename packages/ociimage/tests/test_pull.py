"""ociimage.pull into an OCI layout, against the real loopback registry."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from ociimage.errors import (
    ContentNotFoundError,
    InvalidReferenceError,
    NoMatchingPlatformError,
    ShortNameError,
)
from ociimage.layout import OCILayout, OCILayoutSink
from ociimage.pull import ProgressEvent, ProgressKind, Puller, pull, pull_sync
from ociimage.registries import RegistriesConfig
from ociimage.testing import LocalRegistry, TestImages
from ocispec.image import Annotation, Manifest, MediaType


def _conf(registry: LocalRegistry, extra: str = "") -> RegistriesConfig:
    return RegistriesConfig.parse(
        f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n{extra}'
    )


def _layout_names(root: Path) -> dict[str, str]:
    index = json.loads((root / "index.json").read_text())
    return {m["annotations"][Annotation.REF_NAME]: m["digest"] for m in index["manifests"]}


async def test_pull_busybox_into_layout(
    registry: LocalRegistry, test_images: TestImages, tmp_path: Path
) -> None:
    image = test_images.busybox
    events: list[ProgressEvent] = []
    result = await pull(
        image.reference,
        OCILayoutSink(tmp_path / "oci"),
        registries=_conf(registry),
        progress=events.append,
    )
    assert result.manifest.digest == image.manifest_digest
    assert result.index is None
    assert result.repo_digest == image.digest_reference
    assert result.names == [image.reference]
    assert list(result.config.rootfs.diff_ids) == list(image.diff_ids)
    layout = OCILayout(tmp_path / "oci")
    assert _layout_names(tmp_path / "oci") == {image.reference: image.manifest_digest}
    manifest = Manifest.from_json(layout.read_blob(image.manifest_digest))
    for desc in (manifest.config, *manifest.layers):
        assert layout.read_blob(desc.digest)
    assert result.downloaded_bytes == sum(d.size for d in manifest.layers)
    kinds = [e.kind for e in events]
    assert kinds[0] == ProgressKind.START and kinds[-1] == ProgressKind.DONE
    assert events[-1].done == manifest.layers[-1].size
    assert not (tmp_path / "oci" / ".ingest").exists()
    # a second pull finds everything present and downloads nothing
    again = await pull(image.reference, OCILayoutSink(tmp_path / "oci"), registries=_conf(registry))
    assert again.downloaded_bytes == 0
    assert set(again.skipped_blobs) >= set(image.layer_digests)


async def test_pull_index_selects_platform(
    registry: LocalRegistry, test_images: TestImages, tmp_path: Path
) -> None:
    index = test_images.multiplatform
    arm = index.for_platform("arm64")
    sink = OCILayoutSink(tmp_path / "oci")
    result = await pull(
        index.reference, sink, platform="linux/arm64/v8", registries=_conf(registry)
    )
    assert result.manifest.digest == arm.manifest_digest
    assert result.index is not None and result.index.digest == index.digest
    assert result.repo_digest == index.digest_reference
    assert result.image.platforms and {str(p) for p in result.image.platforms} >= {
        "linux/amd64",
        "linux/arm64/v8",
    }
    # the layout names the index, which holds both platforms' manifests
    assert _layout_names(tmp_path / "oci") == {index.reference: index.digest}
    assert sink.has_blob(arm.manifest_digest)
    amd = await pull(index.reference, sink, platform="linux/amd64", registries=_conf(registry))
    assert amd.manifest.digest == index.for_platform("amd64").manifest_digest
    with pytest.raises(NoMatchingPlatformError, match=r"s390x.*linux/amd64"):
        await pull(index.reference, sink, platform="linux/s390x", registries=_conf(registry))


async def test_pull_by_digest_records_no_tag(
    registry: LocalRegistry, test_images: TestImages, tmp_path: Path
) -> None:
    image = test_images.layered
    sink = OCILayoutSink(tmp_path / "oci")
    result = await pull(image.digest_reference, sink, registries=_conf(registry))
    assert result.names == []
    assert result.repo_digest == image.digest_reference
    index = json.loads((tmp_path / "oci" / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [image.manifest_digest]
    assert len(result.image.image_manifest.layers) == 3


async def test_short_names_and_errors(
    registry: LocalRegistry, test_images: TestImages, tmp_path: Path
) -> None:
    conf = _conf(
        registry,
        f'[aliases]\n"bb" = "{registry.host}/crid-test/busybox"\n',
    ).merged({"unqualified-search-registries": [registry.host]})
    sink = OCILayoutSink(tmp_path / "oci")
    by_alias = await pull("bb:latest", sink, registries=conf)
    assert by_alias.names == [test_images.busybox.reference]
    searched = await pull("crid-test/user-env", sink, registries=conf)
    assert searched.names == [test_images.user_env.reference]
    with pytest.raises(ContentNotFoundError, match="not found"):
        await pull(f"{registry.host}/crid-test/absent:latest", sink, registries=conf)
    with pytest.raises(ShortNameError):
        await pull("busybox", sink, registries=RegistriesConfig())
    with pytest.raises(InvalidReferenceError):
        await pull("Not A Reference", sink, registries=conf)


def test_pull_sync_and_shared_puller_single_flight(
    registry: LocalRegistry, test_images: TestImages, tmp_path: Path
) -> None:
    result = pull_sync(
        test_images.user_env.reference, OCILayoutSink(tmp_path / "a"), registries=_conf(registry)
    )
    assert result.manifest.digest == test_images.user_env.manifest_digest

    async def both() -> tuple[int, int]:
        sink = OCILayoutSink(tmp_path / "b")
        async with Puller(registries=_conf(registry)) as puller:
            # busybox's layer is also user_env's bottom layer: fetched once
            a, b = await asyncio.gather(
                puller.pull(test_images.busybox.reference, sink),
                puller.pull(test_images.layered.reference, sink),
            )
        return a.downloaded_bytes, b.downloaded_bytes

    a_bytes, b_bytes = asyncio.run(both())
    shared = test_images.busybox.layer_digests[0]
    assert shared == test_images.layered.layer_digests[0]
    layered = OCILayout(tmp_path / "b")
    manifest = Manifest.from_json(layered.read_blob(test_images.layered.manifest_digest))
    total = sum(d.size for d in manifest.layers)
    assert a_bytes + b_bytes == total  # the shared layer counted once


async def test_plain_http_needs_insecure(
    registry: LocalRegistry, test_images: TestImages, tmp_path: Path
) -> None:
    from ociimage._retry import RetryPolicy
    from ociimage.errors import RegistryUnavailableError

    async with Puller(retry=RetryPolicy(attempts=1)) as puller:
        with pytest.raises(RegistryUnavailableError):
            await puller.pull(test_images.busybox.reference, OCILayoutSink(tmp_path / "x"))
    assert not (tmp_path / "x").exists()  # a failed pull writes nothing, not even a layout


async def test_docker_schema2_list_and_manifest(
    registry: LocalRegistry, test_images: TestImages, tmp_path: Path
) -> None:
    from ociimage.testing import Blob, RegistryPusher

    oci = test_images.busybox
    manifest_doc = json.loads(oci.image.manifest.data)
    manifest_doc["mediaType"] = MediaType.DOCKER_MANIFEST
    manifest_doc["config"]["mediaType"] = MediaType.DOCKER_CONFIG
    for layer in manifest_doc["layers"]:
        layer["mediaType"] = MediaType.DOCKER_LAYER_GZIP
    manifest = Blob.of(MediaType.DOCKER_MANIFEST, json.dumps(manifest_doc, indent=3).encode())
    platform = {"architecture": oci.platform.architecture, "os": oci.platform.os}
    listing = Blob.of(
        MediaType.DOCKER_MANIFEST_LIST,
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MediaType.DOCKER_MANIFEST_LIST,
                "manifests": [manifest.descriptor(platform=platform)],
            }
        ).encode(),
    )
    with RegistryPusher(registry) as pusher:
        # blobs are per repository: push them here first
        for blob in (oci.image.config, *oci.image.layers):
            pusher.push_blob("docker/busybox", blob.data, blob.digest)
        pusher.push_manifest("docker/busybox", manifest.digest, manifest)
        pusher.push_manifest("docker/busybox", "list", listing)
    ref = f"{registry.host}/docker/busybox:list"
    result = await pull(
        ref, OCILayoutSink(tmp_path / "oci"), platform=str(oci.platform), registries=_conf(registry)
    )
    assert result.index is not None and result.index.media_type == MediaType.DOCKER_MANIFEST_LIST
    assert result.index.digest == listing.digest
    assert result.manifest.media_type == MediaType.DOCKER_MANIFEST
    assert result.manifest.digest == manifest.digest  # bytes kept as sent (indent=3)
    assert list(result.config.rootfs.diff_ids) == list(oci.diff_ids)


async def test_a_config_that_does_not_match_the_manifest_commits_no_blob(
    registry: LocalRegistry,
    test_images: TestImages,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The config downloads with the layers, but no layer is committed before it passed."""
    from ociimage.client import RegistryClient
    from ociimage.errors import UnsupportedManifestError
    from ociimage.testing import Blob, RegistryPusher

    get_blob = RegistryClient.get_blob

    async def late_config(self: RegistryClient, *args: Any, **kwargs: Any) -> bytes:
        data = await get_blob(self, *args, **kwargs)
        await asyncio.sleep(0.5)  # the layers are all downloaded by then
        return data

    monkeypatch.setattr(RegistryClient, "get_blob", late_config)

    oci = test_images.layered
    config_doc = json.loads(oci.image.config.data)
    config_doc["rootfs"]["diff_ids"] = config_doc["rootfs"]["diff_ids"][:1]  # one short
    config = Blob.of(MediaType.IMAGE_CONFIG, json.dumps(config_doc).encode())
    manifest_doc = json.loads(oci.image.manifest.data)
    manifest_doc["config"] = config.descriptor()
    manifest = Blob.of(MediaType.IMAGE_MANIFEST, json.dumps(manifest_doc).encode())
    with RegistryPusher(registry) as pusher:
        for blob in (config, *oci.image.layers):
            pusher.push_blob("mismatch/app", blob.data, blob.digest)
        pusher.push_manifest("mismatch/app", "1", manifest)
    root = tmp_path / "oci"
    with pytest.raises(UnsupportedManifestError, match="diff_ids"):
        await pull(
            f"{registry.host}/mismatch/app:1", OCILayoutSink(root), registries=_conf(registry)
        )
    blobs = [p.name for p in (root / "blobs").rglob("*") if p.is_file()] if root.exists() else []
    assert blobs == []
    assert not any((root / ".ingest").iterdir()) if (root / ".ingest").exists() else True
