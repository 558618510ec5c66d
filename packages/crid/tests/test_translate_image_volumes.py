"""crid.translate for image volumes (KEP-4639): validation, the bind, the reported ref."""

from __future__ import annotations

from pathlib import Path

import pytest

from crid._cri.v1 import api_pb2
from crid.container.request import ImageVolumeRequest
from crid.errors import InvalidConfigError
from crid.translate import container_options, container_request, with_image_volume_refs
from ocispec.generate import BindMount, MountPropagation
from ocispec.image import ImageConfig

from .test_translate import paths, pod_config, sandbox

IMAGE = ImageConfig.from_json(b'{"architecture":"amd64","os":"linux"}')


def config(*mounts: api_pb2.Mount) -> api_pb2.ContainerConfig:
    return api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name="c"),
        image=api_pb2.ImageSpec(image="busybox"),
        mounts=list(mounts),
    )


def image_mount(path: str, image: str = "sha256:" + "1" * 64, **fields: object) -> api_pb2.Mount:
    fields.setdefault("readonly", True)
    return api_pb2.Mount(
        container_path=path,
        image=api_pb2.ImageSpec(image=image),
        **fields,  # type: ignore[arg-type]
    )


def test_image_mounts_become_volume_requests() -> None:
    host = api_pb2.Mount(container_path="/h", host_path="/srv")
    request = container_request(
        "p", config(host, image_mount("/v", image_sub_path="etc"), image_mount("/w", "busybox"))
    )
    assert request.image_volumes == (
        ImageVolumeRequest(
            index=1, container_path="/v", image="sha256:" + "1" * 64, sub_path="etc"
        ),
        ImageVolumeRequest(index=2, container_path="/w", image="busybox"),
    )
    assert container_request("p", config(host)).image_volumes == ()


@pytest.mark.parametrize(
    ("mount", "message"),
    [
        (image_mount("/v", readonly=False), "image volumes are read-only; set readonly"),
        (image_mount("/v", host_path="/srv"), "image and host_path are mutually exclusive"),
        (image_mount(""), "a mount needs a container_path"),
        (
            api_pb2.Mount(container_path="/h", host_path="/srv", image_sub_path="etc"),
            "'/h': image_sub_path needs an image",
        ),
    ],
)
def test_bad_image_mounts_are_refused(mount: api_pb2.Mount, message: str) -> None:
    with pytest.raises(InvalidConfigError, match=message):
        container_request("p", config(mount))


def test_image_volumes_bind_read_only_where_ocistore_mounted_them(tmp_path: Path) -> None:
    cfg = config(
        api_pb2.Mount(container_path="/h", host_path=str(tmp_path)),
        image_mount("/v", propagation=api_pb2.PROPAGATION_BIDIRECTIONAL),
        image_mount("/r", recursive_read_only=True),
    )
    pod = pod_config()
    volumes = {1: tmp_path / "vol1/merged", 2: tmp_path / "vol2/merged/etc"}
    options = container_options(
        cfg.SerializeToString(),
        sandbox(pod, {}),
        IMAGE,
        paths(tmp_path, image_volumes=volumes),
    )
    binds = {m.destination: m for m in options.mounts if isinstance(m, BindMount)}
    assert binds["/v"] == BindMount(
        source=str(volumes[1]),
        destination="/v",
        readonly=True,
        recursive=False,
        propagation=MountPropagation.PRIVATE,  # the store's mount is private to crid
        options=("nosuid", "nodev"),
    )
    assert binds["/r"].source == str(volumes[2]) and binds["/r"].recursive_readonly
    assert binds["/h"].source == str(tmp_path)
    with pytest.raises(InvalidConfigError, match="image volume at '/v' was not mounted"):
        container_options(cfg.SerializeToString(), sandbox(pod, {}), IMAGE, paths(tmp_path))


def test_reported_image_refs_are_recorded_in_the_config() -> None:
    original = config(api_pb2.Mount(container_path="/h", host_path="/srv"), image_mount("/v"))
    data = original.SerializeToString()
    assert with_image_volume_refs(data, {}) == data
    updated = api_pb2.ContainerConfig.FromString(
        with_image_volume_refs(data, {1: "sha256:" + "2" * 64})
    )
    assert updated.mounts[1].image.image_ref == "sha256:" + "2" * 64
    assert updated.mounts[1].image.image == "sha256:" + "1" * 64
    assert not updated.mounts[0].HasField("image")
