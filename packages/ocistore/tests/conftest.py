"""Fixtures of ocistore's tests: a fresh store and the standard test images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ocistore import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store", durable=False) as s:
        try:
            yield s
        finally:
            for c in s.list_containers():
                s.unmount_container(c.id)


@pytest.fixture(scope="session")
def layered_image() -> object:
    from ociimage.testing.images import layered_whiteout_image

    return layered_whiteout_image()


@pytest.fixture(scope="session")
def busybox_built() -> object:
    from ociimage.testing.images import busybox_image

    return busybox_image()
