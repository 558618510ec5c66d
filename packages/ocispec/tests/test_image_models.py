"""Image-spec models: JSON round trips, unknown fields, omit-when-empty, digests, layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from ocispec import DecodeError, InvalidDigestError, Schema, violations
from ocispec.image import (
    Descriptor,
    Digest,
    ExecutionConfig,
    History,
    ImageConfig,
    ImageLayout,
    Index,
    Manifest,
    MediaType,
    Platform,
    RootFS,
    blob_path,
    is_config,
    is_docker,
    is_index,
    is_layer,
    is_manifest,
    layer_compression,
    oci_equivalent,
)
from ocispec.testing import models

IMAGE_MODELS = [
    Descriptor,
    Manifest,
    Index,
    ImageConfig,
    ExecutionConfig,
    History,
    RootFS,
    Platform,
    ImageLayout,
]


@pytest.mark.parametrize("cls", IMAGE_MODELS, ids=lambda c: c.__name__)
def test_round_trip_property(cls: type) -> None:
    @settings(max_examples=60, deadline=None)
    @given(models(cls))
    def check(value: object) -> None:
        text = value.to_json()  # type: ignore[attr-defined]
        again = cls.from_json(text)
        assert again == value
        assert again.to_json() == text
        assert hash(again) == hash(value)

    check()


DOCKER_CONFIG = {
    "architecture": "amd64",
    "config": {
        "Hostname": "",
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["sh"],
        "Image": "sha256:abc",
        "Volumes": None,
        "WorkingDir": "",
        "Entrypoint": None,
        "OnBuild": None,
        "Labels": None,
    },
    "container": "6f6d0b",
    "container_config": {"Hostname": "6f6d0b", "Cmd": ["/bin/sh", "-c", "#(nop) ", 'CMD ["sh"]']},
    "created": "2023-05-19T20:19:22.751398716Z",
    "docker_version": "20.10.23",
    "history": [
        {
            "created": "2023-05-19T20:19:22.642317997Z",
            "created_by": "/bin/sh -c #(nop) ADD file:1 in / ",
        },
        {
            "created": "2023-05-19T20:19:22.751398716Z",
            "created_by": '/bin/sh -c #(nop)  CMD ["sh"]',
            "empty_layer": True,
        },
    ],
    "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]},
}


def test_docker_config_decodes_and_keeps_unknown_fields() -> None:
    cfg = ImageConfig.from_dict(DOCKER_CONFIG)
    assert cfg.config.cmd == ("sh",)
    assert cfg.config.entrypoint == ()
    assert cfg.config.extra["Image"] == "sha256:abc"
    assert cfg.extra["docker_version"] == "20.10.23"
    assert cfg.history[1].empty_layer is True
    assert cfg.platform == Platform(os="linux", architecture="amd64")
    out = cfg.to_dict()
    assert out["container_config"] == DOCKER_CONFIG["container_config"]
    assert out["config"]["Hostname"] == ""
    # nulls of Go nil slices and maps are dropped: omitted-when-empty.
    assert "Entrypoint" not in out["config"] and "Volumes" not in out["config"]
    assert violations(out, Schema.IMAGE_CONFIG) == []


def test_omit_when_empty_and_required_fields_written() -> None:
    d = Descriptor(media_type=MediaType.IMAGE_LAYER, digest="sha256:" + "0" * 64, size=0)
    assert d.to_dict() == {
        "mediaType": MediaType.IMAGE_LAYER,
        "digest": "sha256:" + "0" * 64,
        "size": 0,
    }
    m = Manifest(config=d)
    assert m.to_dict() == {"schemaVersion": 2, "config": d.to_dict(), "layers": []}
    cfg = ImageConfig(architecture="arm64", os="linux")
    assert cfg.to_dict() == {
        "architecture": "arm64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
    }


def test_field_names_as_the_spec_spells_them() -> None:
    p = Platform(
        os="windows", architecture="amd64", os_version="10.0.17763.1", os_features=["win32k"]
    )
    assert p.to_dict() == {
        "architecture": "amd64",
        "os": "windows",
        "os.version": "10.0.17763.1",
        "os.features": ["win32k"],
    }
    e = ExecutionConfig(
        exposed_ports={"80/tcp", "53/udp"},
        volumes={"/data"},
        working_dir="/w",
        stop_signal="SIGINT",
    )
    assert e.to_dict() == {
        "ExposedPorts": {"53/udp": {}, "80/tcp": {}},
        "Volumes": {"/data": {}},
        "WorkingDir": "/w",
        "StopSignal": "SIGINT",
    }
    h = History(created_by="x", empty_layer=True)
    assert h.to_dict() == {"created_by": "x", "empty_layer": True}


def test_descriptor_data_is_base64_and_artifact_type() -> None:
    d = Descriptor.from_bytes(
        MediaType.EMPTY_JSON, b"{}", data=b"{}", artifact_type="application/x"
    )
    doc = d.to_dict()
    assert doc["data"] == "e30="
    assert doc["artifactType"] == "application/x"
    assert Descriptor.from_dict(doc) == d
    assert d.parsed_digest.verify(b"{}")


def test_decode_errors_name_the_path() -> None:
    with pytest.raises(DecodeError, match=r"\$\.layers\[1\]\.size: expected integer, got string"):
        Manifest.from_dict(
            {
                "schemaVersion": 2,
                "config": {"mediaType": "a/b", "digest": "sha256:x", "size": 1},
                "layers": [
                    {"mediaType": "a/b", "digest": "sha256:x", "size": 1},
                    {"mediaType": "a/b", "digest": "sha256:x", "size": "1"},
                ],
            }
        )
    with pytest.raises(DecodeError, match=r"\$\.config: missing required field 'digest'"):
        Manifest.from_dict({"config": {"mediaType": "a/b", "size": 1}})
    with pytest.raises(DecodeError, match="expected integer, got boolean"):
        Descriptor.from_dict({"mediaType": "a/b", "digest": "sha256:x", "size": True})
    with pytest.raises(DecodeError, match="not valid JSON"):
        Index.from_json("{")
    with pytest.raises(DecodeError, match="invalid base64"):
        Descriptor.from_dict({"mediaType": "a/b", "digest": "sha256:x", "size": 1, "data": "%%"})


def test_lists_and_dicts_are_frozen() -> None:
    d = Descriptor(media_type="a/b", digest="sha256:x", size=1, urls=["u"], annotations={"k": "v"})
    assert d.urls == ("u",)
    assert d.annotations == {"k": "v"}
    with pytest.raises(TypeError):
        d.annotations["k"] = "w"  # type: ignore[index]
    assert {d, d.replace(size=1)} == {d}


def test_docker_manifest_list_and_media_types() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": MediaType.DOCKER_MANIFEST_LIST,
        "manifests": [
            {
                "mediaType": MediaType.DOCKER_MANIFEST,
                "digest": "sha256:" + "1" * 64,
                "size": 5,
                "platform": {"architecture": "arm", "os": "linux", "variant": "v6"},
            },
            {
                "mediaType": MediaType.DOCKER_MANIFEST,
                "digest": "sha256:" + "2" * 64,
                "size": 5,
                "platform": {"architecture": "amd64", "os": "linux"},
            },
            {
                "mediaType": MediaType.DOCKER_MANIFEST,
                "digest": "sha256:" + "3" * 64,
                "size": 5,
                "platform": {"architecture": "arm", "os": "linux", "variant": "v7"},
            },
        ],
    }
    idx = Index.from_dict(doc)
    assert [m.digest[-1] for m in idx.select("linux/arm/v7")] == ["3", "1"]
    assert [m.digest[-1] for m in idx.select("linux/amd64")] == ["2"]
    assert idx.to_dict() == doc
    assert violations(doc, Schema.IMAGE_INDEX) == []
    assert is_index(MediaType.DOCKER_MANIFEST_LIST) and is_index(MediaType.IMAGE_INDEX)
    assert is_manifest(MediaType.DOCKER_MANIFEST) and not is_manifest(MediaType.IMAGE_INDEX)
    assert is_config(MediaType.DOCKER_CONFIG) and is_docker(MediaType.DOCKER_CONFIG)
    assert is_layer(MediaType.DOCKER_LAYER_GZIP) and is_layer(MediaType.IMAGE_LAYER_ZSTD)
    assert not is_layer(MediaType.IMAGE_CONFIG)
    assert layer_compression(MediaType.DOCKER_LAYER_GZIP) == "gzip"
    assert layer_compression(MediaType.IMAGE_LAYER_ZSTD) == "zstd"
    assert layer_compression(MediaType.IMAGE_LAYER) is None
    with pytest.raises(ValueError, match="encrypted"):
        layer_compression(MediaType.IMAGE_LAYER_GZIP_ENCRYPTED)
    assert oci_equivalent(MediaType.DOCKER_MANIFEST) == MediaType.IMAGE_MANIFEST
    assert oci_equivalent("text/plain") == "text/plain"


def test_digest() -> None:
    d = Digest.from_bytes(b"hello")
    assert d.algorithm == "sha256" and len(d.encoded) == 64
    assert d.verify(b"hello") and not d.verify(b"bye")
    for bad in ["sha256:abc", "nocolon", "sha256:" + "A" * 64, ""]:
        with pytest.raises(InvalidDigestError):
            Digest(bad)
    assert Digest("blake3:" + "a" * 10).algorithm == "blake3"


def test_layout(tmp_path: Path) -> None:
    assert ImageLayout().to_json() == '{"imageLayoutVersion":"1.0.0"}'
    digest = Digest.from_bytes(b"x")
    assert blob_path(tmp_path, digest) == tmp_path / "blobs" / "sha256" / digest.encoded
    with pytest.raises(InvalidDigestError):
        blob_path(tmp_path, "sha256:../../etc")
    assert violations(ImageLayout(), Schema.IMAGE_LAYOUT) == []
    assert violations({"imageLayoutVersion": "2.0.0"}, Schema.IMAGE_LAYOUT)[0].rule == "enum"


def test_json_output_is_compact_and_pretty_on_request() -> None:
    cfg = ImageConfig(architecture="amd64", os="linux")
    assert ": " not in cfg.to_json()
    assert json.loads(cfg.to_json(indent=2)) == cfg.to_dict()
    assert cfg.to_bytes() == cfg.to_json().encode()
