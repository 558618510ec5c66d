"""The fault tier's shared node: one crid, network and pulled image per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crid._cri.v1 import api_pb2
from ociimage.testing import LocalRegistry, TestImages

from ._node import Node


@pytest.fixture(scope="module")
def node(
    tmp_path_factory: pytest.TempPathFactory, registry: LocalRegistry, test_images: TestImages
) -> Iterator[Node]:
    """A running crid with the busybox image pulled through the CRI."""
    made = Node(tmp_path_factory.mktemp("node"), registry, grace="1s")
    made.start()
    try:
        made.images.PullImage(
            api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=test_images.busybox.reference))
        )
        yield made
    finally:
        made.destroy()


@pytest.fixture(autouse=True)
def _tidy(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each case on the shared node, a failed one's pods go (the next starts clean)."""
    yield
    if "node" in request.fixturenames:
        shared: Node = request.getfixturevalue("node")
        if shared.proc is None or shared.proc.poll() is not None:
            shared.set_fault()
            shared.start()
        shared.clean_up()
