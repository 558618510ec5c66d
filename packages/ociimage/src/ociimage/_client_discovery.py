"""What a :class:`~ociimage.client.RegistryClient` can find out about a repository
besides pulling: its tags, signatures served by the signature API, and referrers."""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING

from ociimage._wire import scope
from ociimage.errors import ContentNotFoundError, RegistryError
from ocispec.image import Descriptor, Index, MediaType, is_index

if TYPE_CHECKING:
    from ociimage._client_core import ClientCore

__all__ = ["DiscoveryMethods"]


class DiscoveryMethods:
    """Mixed into :class:`~ociimage.client.RegistryClient`."""

    async def list_tags(self: ClientCore, repository: str) -> list[str]:
        """The repository's tags (one page of up to 10000)."""
        async with self._stream(
            "GET", f"/v2/{repository}/tags/list?n=10000", scopes=[scope(repository)]
        ) as response:
            body = await self._read_decoded(response, self.limits.max_manifest_bytes, "tag list")
        try:
            tags = json.loads(body).get("tags") or []
        except (ValueError, AttributeError) as err:
            raise RegistryError(f"{self.host}/{repository}: tag list is not JSON") from err
        return [str(t) for t in tags]

    async def signatures_extension(self: ClientCore, repository: str, digest: str) -> list[bytes]:
        """OpenPGP signatures from the registry's signature API (``X-Registry-Supports-
        Signatures``, as OpenShift's registry serves them); empty when it has none or no API."""
        try:
            async with self._stream(
                "GET",
                f"/extensions/v2/{repository}/signatures/{digest}",
                scopes=[scope(repository)],
            ) as response:
                body = await self._read_decoded(
                    response, self.limits.max_signature_bytes, "signature list"
                )
        except ContentNotFoundError:
            return []
        try:
            entries = json.loads(body).get("signatures") or []
            return [
                base64.b64decode(e["content"], validate=True)
                for e in entries
                if isinstance(e, dict) and e.get("type", "atomic") == "atomic"
            ]
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as err:
            raise RegistryError(
                f"{self.host}/{repository}: malformed signature API answer: {err}"
            ) from err

    async def referrers(self: ClientCore, repository: str, digest: str) -> list[Descriptor]:
        """Artifacts whose ``subject`` is ``digest``: the referrers API, else the
        ``<alg>-<hex>`` tag fallback index."""
        try:
            async with self._stream(
                "GET", f"/v2/{repository}/referrers/{digest}", scopes=[scope(repository)]
            ) as response:
                body = await self._read_decoded(
                    response, self.limits.max_manifest_bytes, "referrers list"
                )
                ctype = response.headers.get("content-type", "")
            if is_index(ctype) or MediaType.IMAGE_INDEX in ctype:
                return list(Index.from_json(body).manifests)
        except ContentNotFoundError:
            pass
        tag = digest.replace(":", "-")
        try:
            fallback = await self.get_manifest(repository, tag, accept=[MediaType.IMAGE_INDEX])
        except ContentNotFoundError:
            return []
        if not fallback.is_index:
            return []
        return list(Index.from_json(fallback.data).manifests)
