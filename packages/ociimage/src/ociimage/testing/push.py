"""Push test images to a registry over the OCI distribution API, with httpx.

Why not oras-py (``oras.provider.Registry``)? Its ``upload_manifest`` validates
every manifest against an image-manifest schema and always sends the image
manifest media type, so it cannot push an OCI index; and it re-serialises the
manifest through ``requests``' ``json=``, so the bytes the registry stores, and
hence the digest, are not the ones the test image was built with. ``upload_blob``
also wants a file on disk. The protocol needed here is five requests, so this
module speaks it directly:

* blobs: ``HEAD`` to skip ones present, else monolithic upload
  (``POST /v2/<name>/blobs/uploads/`` then ``PUT <Location>&digest=<digest>``);
* manifests and indexes: ``PUT /v2/<name>/manifests/<ref>`` with the exact bytes
  and their media type, then ``GET`` it back and compare bytes and digest.

Authentication is any ``httpx.Auth`` (a ``(user, password)`` tuple means Basic),
so a token-auth flow can be plugged in later without changing this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self, overload

import httpx

from ociimage.testing.images import (
    INDEX_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    Blob,
    BuiltImage,
    BuiltIndex,
    Platform,
    TreeFacts,
    busybox_image,
    layered_whiteout_image,
    multiplatform_index,
    user_env_image,
)
from ociimage.testing.layers import sha256_digest
from ociimage.testing.registry import LocalRegistry

__all__ = [
    "PushError",
    "PushedImage",
    "PushedIndex",
    "RegistryPusher",
    "TestImages",
    "push_image",
    "push_index",
    "push_test_images",
]

_MANIFEST_ACCEPT = ", ".join(
    [
        MANIFEST_MEDIA_TYPE,
        INDEX_MEDIA_TYPE,
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


class PushError(RuntimeError):
    """The registry refused or garbled something we pushed."""


@dataclass(frozen=True)
class PushedImage:
    """A :class:`BuiltImage` as it now lives in a registry."""

    host: str
    image: BuiltImage

    @property
    def repository(self) -> str:
        return self.image.repository

    @property
    def tag(self) -> str:
        return self.image.tag

    @property
    def reference(self) -> str:
        """``HOST/REPOSITORY:TAG``."""
        return f"{self.host}/{self.image.repository}:{self.image.tag}"

    @property
    def digest_reference(self) -> str:
        """``HOST/REPOSITORY@sha256:...``."""
        return f"{self.host}/{self.image.repository}@{self.image.manifest_digest}"

    @property
    def manifest_digest(self) -> str:
        return self.image.manifest_digest

    @property
    def config_digest(self) -> str:
        return self.image.config_digest

    @property
    def layer_digests(self) -> tuple[str, ...]:
        return self.image.layer_digests

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return self.image.diff_ids

    @property
    def platform(self) -> Platform:
        return self.image.platform

    @property
    def tree(self) -> TreeFacts:
        return self.image.tree

    @property
    def config_doc(self) -> dict[str, Any]:
        return self.image.config_doc


@dataclass(frozen=True)
class PushedIndex:
    """A :class:`BuiltIndex` and its per-platform images, now in a registry."""

    host: str
    index: BuiltIndex
    images: tuple[PushedImage, ...]

    @property
    def repository(self) -> str:
        return self.index.repository

    @property
    def tag(self) -> str:
        return self.index.tag

    @property
    def reference(self) -> str:
        return f"{self.host}/{self.index.repository}:{self.index.tag}"

    @property
    def digest_reference(self) -> str:
        return f"{self.host}/{self.index.repository}@{self.index.digest}"

    @property
    def manifest_digest(self) -> str:
        return self.index.digest

    @property
    def digest(self) -> str:
        return self.index.digest

    @property
    def platforms(self) -> tuple[Platform, ...]:
        return self.index.platforms

    def for_platform(self, architecture: str, os: str = "linux") -> PushedImage:
        for image in self.images:
            if image.platform.architecture == architecture and image.platform.os == os:
                return image
        raise KeyError(f"no {os}/{architecture} image in the index")


def _host_and_auth(
    target: LocalRegistry | str, auth: httpx.Auth | tuple[str, str] | None
) -> tuple[str, str, httpx.Auth | tuple[str, str] | None]:
    if isinstance(target, LocalRegistry):
        return target.host, target.url, auth if auth is not None else target.auth
    if "://" in target:
        url = httpx.URL(target)
        host = url.netloc.decode()
        return host, f"{url.scheme}://{host}", auth
    return target, f"http://{target}", auth


class RegistryPusher:
    """Pushes blobs, manifests and indexes to one registry.

    *target* is a :class:`LocalRegistry` (its credentials are used), a host
    (``127.0.0.1:PORT``, spoken to over plain HTTP) or a base URL.
    """

    def __init__(
        self,
        target: LocalRegistry | str,
        *,
        auth: httpx.Auth | tuple[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.host, self.base_url, resolved_auth = _host_and_auth(target, auth)
        self._client = httpx.Client(base_url=self.base_url, auth=resolved_auth, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @staticmethod
    def _fail(what: str, response: httpx.Response) -> PushError:
        body = response.text[:500]
        return PushError(f"{what}: HTTP {response.status_code} {response.reason_phrase}: {body}")

    # -- blobs ---------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        response = self._client.head(f"/v2/{repository}/blobs/{digest}")
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self._fail(f"HEAD blob {digest} in {repository}", response)

    def push_blob(self, repository: str, data: bytes, digest: str | None = None) -> str:
        """Upload *data* monolithically (POST, then PUT ?digest=); returns its digest."""
        digest = digest or sha256_digest(data)
        if sha256_digest(data) != digest:
            raise ValueError(f"blob data does not match {digest}")
        if self.blob_exists(repository, digest):
            return digest
        started = self._client.post(f"/v2/{repository}/blobs/uploads/")
        if started.status_code != 202 or "location" not in started.headers:
            raise self._fail(f"starting upload of {digest} to {repository}", started)
        location = httpx.URL(self.base_url).join(started.headers["location"])
        finished = self._client.put(
            location.copy_merge_params({"digest": digest}),
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if finished.status_code != 201:
            raise self._fail(f"finishing upload of {digest} to {repository}", finished)
        echoed = finished.headers.get("docker-content-digest")
        if echoed is not None and echoed != digest:
            raise PushError(f"registry stored blob {digest} as {echoed}")
        return digest

    def fetch_blob(self, repository: str, digest: str) -> bytes:
        response = self._client.get(f"/v2/{repository}/blobs/{digest}", follow_redirects=True)
        if response.status_code != 200:
            raise self._fail(f"GET blob {digest} from {repository}", response)
        return response.content

    # -- manifests -----------------------------------------------------------------

    def push_manifest(self, repository: str, reference: str, manifest: Blob) -> str:
        """PUT *manifest*'s exact bytes under *reference* (a tag or its digest), then
        fetch it back and check bytes, media type and digest. Returns the digest."""
        response = self._client.put(
            f"/v2/{repository}/manifests/{reference}",
            content=manifest.data,
            headers={"Content-Type": manifest.media_type},
        )
        if response.status_code != 201:
            raise self._fail(f"PUT manifest {repository}:{reference}", response)
        echoed = response.headers.get("docker-content-digest")
        if echoed is not None and echoed != manifest.digest:
            raise PushError(f"registry stored manifest {manifest.digest} as {echoed}")
        fetched = self.fetch_manifest(repository, reference)
        if fetched.data != manifest.data or fetched.media_type != manifest.media_type:
            raise PushError(
                f"manifest {repository}:{reference} read back differs from what was pushed "
                f"({fetched.media_type} {fetched.digest} vs "
                f"{manifest.media_type} {manifest.digest})"
            )
        return manifest.digest

    def fetch_manifest(self, repository: str, reference: str) -> Blob:
        """GET a manifest or index; checks the Docker-Content-Digest header."""
        response = self._client.get(
            f"/v2/{repository}/manifests/{reference}", headers={"Accept": _MANIFEST_ACCEPT}
        )
        if response.status_code != 200:
            raise self._fail(f"GET manifest {repository}:{reference}", response)
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        blob = Blob.of(media_type, response.content)
        echoed = response.headers.get("docker-content-digest")
        if echoed is not None and echoed != blob.digest:
            raise PushError(
                f"manifest {repository}:{reference} is {blob.digest}, header says {echoed}"
            )
        if reference.startswith("sha256:") and reference != blob.digest:
            raise PushError(f"asked for {reference}, got {blob.digest}")
        return blob

    # -- images --------------------------------------------------------------------

    def push_image(self, image: BuiltImage) -> PushedImage:
        """Push config, layers and manifest (tagged ``image.tag``)."""
        repo = image.repository
        self.push_blob(repo, image.config.data, image.config.digest)
        for layer in image.layers:
            self.push_blob(repo, layer.data, layer.digest)
        self.push_manifest(repo, image.tag, image.manifest)
        return PushedImage(self.host, image)

    def push_index(self, index: BuiltIndex) -> PushedIndex:
        """Push every platform image (tagged with its own tag), then the index."""
        pushed = tuple(self.push_image(image) for image in index.images)
        self.push_manifest(index.repository, index.tag, index.index)
        return PushedIndex(self.host, index, pushed)

    @overload
    def push(self, thing: BuiltImage) -> PushedImage: ...
    @overload
    def push(self, thing: BuiltIndex) -> PushedIndex: ...
    def push(self, thing: BuiltImage | BuiltIndex) -> PushedImage | PushedIndex:
        if isinstance(thing, BuiltIndex):
            return self.push_index(thing)
        return self.push_image(thing)


def push_image(
    target: LocalRegistry | str,
    image: BuiltImage,
    *,
    auth: httpx.Auth | tuple[str, str] | None = None,
) -> PushedImage:
    """Push one image to *target*; see :class:`RegistryPusher`."""
    with RegistryPusher(target, auth=auth) as pusher:
        return pusher.push_image(image)


def push_index(
    target: LocalRegistry | str,
    index: BuiltIndex,
    *,
    auth: httpx.Auth | tuple[str, str] | None = None,
) -> PushedIndex:
    """Push an index and its images to *target*; see :class:`RegistryPusher`."""
    with RegistryPusher(target, auth=auth) as pusher:
        return pusher.push_index(index)


@dataclass(frozen=True)
class TestImages:
    """The standard set of test images, pushed (what the ``test_images`` fixture gives)."""

    __test__: ClassVar[bool] = False  # not a pytest test class

    busybox: PushedImage
    layered: PushedImage
    user_env: PushedImage
    multiplatform: PushedIndex

    def __iter__(self) -> Iterator[PushedImage | PushedIndex]:
        return iter((self.busybox, self.layered, self.user_env, self.multiplatform))

    @property
    def images(self) -> tuple[PushedImage, ...]:
        """Every single-platform image, including the index's members."""
        return (self.busybox, self.layered, self.user_env, *self.multiplatform.images)


def push_test_images(
    target: LocalRegistry | str, *, auth: httpx.Auth | tuple[str, str] | None = None
) -> TestImages:
    """Build the four standard test images and push them to *target*."""
    with RegistryPusher(target, auth=auth) as pusher:
        return TestImages(
            busybox=pusher.push_image(busybox_image()),
            layered=pusher.push_image(layered_whiteout_image()),
            user_env=pusher.push_image(user_env_image()),
            multiplatform=pusher.push_index(multiplatform_index()),
        )
