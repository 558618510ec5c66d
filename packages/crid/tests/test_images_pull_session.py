"""The shared Puller between pulls: reused while the configuration is unchanged,
rebuilt when a file changed, closed once pulls stop for ``linger`` seconds."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from crid.images import ImagePuller
from crid.images._watch import fingerprint
from ociimage.errors import PolicyRejectedError
from ociimage.testing import LocalRegistry, TestImages
from ocistore import AsyncStore

from ._images_support import image_config


def test_the_fingerprint_sees_edits_additions_and_removals(tmp_path: Path) -> None:
    conf, dropins = tmp_path / "registries.conf", tmp_path / "registries.conf.d"
    conf.write_text("a = 1\n")
    dropins.mkdir()

    def now() -> object:
        return fingerprint([conf, tmp_path / "missing.json"], [(dropins, 1)])

    first = now()
    assert now() == first
    (dropins / "10-mirror.conf").write_text("x\n")
    added = now()
    assert added != first
    os.utime(dropins / "10-mirror.conf", ns=(0, 0))  # an edit that keeps the size
    touched = now()
    assert touched != added
    conf.write_text("a = 2\n")
    assert now() != touched
    (dropins / "10-mirror.conf").unlink()
    assert now() != touched


@pytest.mark.root
async def test_a_lingering_puller_still_sees_a_changed_policy_and_closes_when_idle(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    busybox = test_images.busybox
    config = image_config(tmp_path, [registry.host])
    store = await AsyncStore.open(tmp_path / "storage", driver="vfs")
    puller = ImagePuller(store, config.crid.image, linger=0.5)
    try:
        outcome = await puller.pull(busybox.reference)
        assert outcome.image.id == busybox.config_digest
        assert puller.connected  # kept for the next pull
        await store.remove_image(outcome.image.id)
        again = await puller.pull(busybox.reference)  # the same, warm Puller
        assert again.image.id == busybox.config_digest
        await store.remove_image(again.image.id)

        Path(config.crid.image.signature_policy).write_text(
            json.dumps({"default": [{"type": "reject"}]})
        )
        with pytest.raises(PolicyRejectedError):
            await puller.pull(busybox.reference)
        for _ in range(200):  # the linger is 0.5 s; allow a loaded machine 10 s
            if not puller.connected:
                break
            await asyncio.sleep(0.05)
        assert not puller.connected  # no registry connection outlives the linger
    finally:
        await puller.aclose()
        await store.close()


@pytest.mark.root
async def test_linger_zero_closes_the_puller_with_the_last_pull(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    config = image_config(tmp_path, [registry.host])
    store = await AsyncStore.open(tmp_path / "storage", driver="vfs")
    try:
        puller = ImagePuller(store, config.crid.image, linger=0)
        await puller.pull(test_images.busybox.reference)
        assert not puller.connected
    finally:
        await store.close()
