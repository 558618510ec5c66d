"""Test helpers for code that uses ociimage: a real local registry and small images.

* :class:`LocalRegistry` runs Debian's ``docker-registry`` on a free 127.0.0.1 port
  with storage in a temp directory (optionally with htpasswd Basic auth).
* :mod:`ociimage.testing.layers` builds deterministic layer tarballs (files,
  directories, symlinks, whiteouts, opaque markers).
* :func:`busybox_image`, :func:`layered_whiteout_image`, :func:`user_env_image`
  and :func:`multiplatform_index` build the standard test images from the static
  ``/usr/bin/busybox``; :func:`push_test_images` pushes all of them.

Nothing here needs Docker; the registry needs the ``docker-registry`` binary and the
images need ``busybox-static``. See docs/testing.md for an example.
"""

from __future__ import annotations

from ociimage.testing.images import (
    BUSYBOX,
    Blob,
    BuiltImage,
    BuiltIndex,
    Platform,
    TreeFacts,
    build_image,
    busybox_image,
    layered_whiteout_image,
    multiplatform_index,
    user_env_image,
)
from ociimage.testing.layers import Layer, build_layer, merge_layers
from ociimage.testing.push import (
    PushedImage,
    PushedIndex,
    PushError,
    RegistryPusher,
    TestImages,
    push_image,
    push_index,
    push_test_images,
)
from ociimage.testing.registry import (
    DOCKER_REGISTRY,
    LocalRegistry,
    RegistryStartError,
    free_port,
)

__all__ = [
    "BUSYBOX",
    "DOCKER_REGISTRY",
    "Blob",
    "BuiltImage",
    "BuiltIndex",
    "Layer",
    "LocalRegistry",
    "Platform",
    "PushError",
    "PushedImage",
    "PushedIndex",
    "RegistryPusher",
    "RegistryStartError",
    "TestImages",
    "TreeFacts",
    "build_image",
    "build_layer",
    "busybox_image",
    "free_port",
    "layered_whiteout_image",
    "merge_layers",
    "multiplatform_index",
    "push_image",
    "push_index",
    "push_test_images",
    "user_env_image",
]
