"""Hostile layers served by the real loopback registry, pulled by ociimage into a store.

The layers of :mod:`test_hostile_layers` go through the path crid uses: ``ociimage``
pulls the image into ``Store.pull_sink()``, whose ``commit_image`` unpacks the layers
(in parallel, beside a harmless layer). A hostile layer must fail the pull with its
ocistore error and leave no image, layer or temporary directory behind; a sparse one
must land with its holes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ociimage.pull import pull_sync
from ociimage.registries import RegistriesConfig
from ociimage.testing import LocalRegistry, Platform, build_image, push_image
from ociimage.testing.images import busybox_arch
from ociimage.testing.layers import Layer, file, sha256_digest
from ociimage.testing.layers import build_layer as build_plain_layer
from ocistore import StoreError, UnpackLimits, UnpackOptions
from ocistore.store import Store

from . import _hostile as h
from .test_hostile_layers import CASES

# Cases whose stream is small enough to build whole (the registry holds the blob anyway).
SERVED = [
    "sparse-pax-1.0",
    "sparse-gnu-old-over-max-bytes",
    "pax-header-claims-1gib",
    "pax-global-flood",
    "path-600-deep",
    "dotdot",
    "symlink-then-write",
    "whiteout-dotdot",
]


def _layer(tar: bytes) -> Layer:
    data = h.gz(tar)
    return Layer(
        data=data, digest=sha256_digest(data), size=len(data), diff_id=sha256_digest(tar),
        entries=(),
    )  # fmt: skip


@pytest.mark.root
@pytest.mark.parametrize("name", SERVED)
def test_hostile_layer_from_registry(registry: LocalRegistry, tmp_path: Path, name: str) -> None:
    case = CASES[name]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("precious")
    tar = case.tar(tmp_path)
    assert isinstance(tar, bytes)
    harmless = build_plain_layer([file(f"etc/{name}", "fine")])
    image = build_image(
        f"hostile/{name}", "latest", [harmless, _layer(tar)],
        platform=Platform(os="linux", architecture=busybox_arch()),
    )  # fmt: skip
    pushed = push_image(registry, image)
    conf = RegistriesConfig.parse(f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n')
    options = UnpackOptions(limits=UnpackLimits(**case.limits))
    with Store.open(tmp_path / "store", durable=False, unpack_options=options) as store:
        sink = store.pull_sink()
        if case.error is None:
            pull_sync(pushed.reference, sink, registries=conf)
            assert sink.image is not None
            top = store.layers.get(sink.image.layers[-1])
            assert top is not None
            assert case.check is not None
            case.check(top.path)
        else:
            with pytest.raises(StoreError) as info:
                pull_sync(pushed.reference, sink, registries=conf)
            assert type(info.value).__name__ == case.error
            assert re.search(case.match, str(info.value)), str(info.value)
            assert store.list_images() == []
            # The harmless layer may stay (it is sound and shared); the hostile one may not.
            assert [layer.diff_id for layer in store.layers.all()] in ([], [harmless.diff_id])
            assert os.listdir(tmp_path / "store" / "tmp") == []
            layer_dirs = os.listdir(tmp_path / "store" / "layers")
            assert len(layer_dirs) == len(store.layers.all())
    assert (outside / "victim").read_text() == "precious"
    assert sorted(os.listdir(outside)) == ["victim"]
