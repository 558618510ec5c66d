"""Pushes of :class:`~ociimage.client.RegistryClient` (test harnesses and tools that
write images): blobs (mounted, monolithic or chunked) and manifests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ociimage._content import verify_content
from ociimage._wire import scope
from ociimage.errors import DigestMismatchError
from ocispec.image import Descriptor, Digest

if TYPE_CHECKING:
    from ociimage._client_core import ClientCore

__all__ = ["PushMethods"]


class PushMethods:
    """Mixed into :class:`~ociimage.client.RegistryClient`; pulls never call these."""

    async def push_blob(
        self: ClientCore,
        repository: str,
        data: bytes,
        descriptor: Descriptor,
        *,
        mount_from: str | None = None,
        chunk_size: int | None = None,
    ) -> None:
        """Upload a blob: skipped when present, cross-mounted from ``mount_from`` when it
        has it, else monolithic (or chunked PATCHes of ``chunk_size`` bytes)."""
        verify_content(data, descriptor, "blob to push")
        push = scope(repository, "pull,push")
        if await self.blob_exists(repository, descriptor.digest, push=True):
            return
        scopes = [push] + ([scope(mount_from)] if mount_from else [])
        start = f"/v2/{repository}/blobs/uploads/"
        if mount_from:
            start += f"?mount={descriptor.digest}&from={mount_from}"
        async with self._stream("POST", start, scopes=scopes, ok=(201, 202)) as response:
            if response.status_code == 201:
                return  # mounted
            location = str(response.url.join(response.headers["location"]))
        if chunk_size:
            for pos in range(0, len(data), chunk_size):
                part = data[pos : pos + chunk_size]
                headers = {
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{pos}-{pos + len(part) - 1}",
                }
                async with self._stream(
                    "PATCH", location, scopes=scopes, headers=headers, content=part, ok=(202,)
                ) as response:
                    location = str(response.url.join(response.headers["location"]))
            body = b""
        else:
            body = data
        import httpx

        url = httpx.URL(location).copy_merge_params({"digest": descriptor.digest})
        async with self._stream(
            "PUT",
            str(url),
            scopes=scopes,
            headers={"Content-Type": "application/octet-stream"},
            content=body,
            ok=(201,),
        ):
            pass

    async def push_manifest(
        self: ClientCore, repository: str, reference: str, data: bytes, media_type: str
    ) -> str:
        """PUT a manifest or index under a tag or digest; returns its digest."""
        digest = str(Digest.from_bytes(data))
        async with self._stream(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            scopes=[scope(repository, "pull,push")],
            headers={"Content-Type": media_type},
            content=data,
            ok=(201,),
        ) as response:
            echoed = response.headers.get("docker-content-digest", "")
        if echoed and echoed != digest:
            raise DigestMismatchError(f"registry stored manifest {digest} as {echoed}")
        return digest
