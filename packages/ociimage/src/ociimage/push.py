"""Pushing an image from an OCI layout to a registry (for test harnesses and the CLI).

Blobs are uploaded first (skipped when the registry has them, cross-mounted from
``mount_from`` when given), then the manifests with their exact bytes, then an index
when the layout entry is one, so digests survive the trip. oras-py is not used: it
cannot push an index and re-serialises manifests, which changes their digests.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from ociimage._retry import RetryPolicy
from ociimage.auth import Credentials, CredentialStore
from ociimage.client import RegistryClient
from ociimage.errors import LayoutError
from ociimage.layout import OCILayout
from ociimage.reference import parse_reference
from ociimage.registries import RegistriesConfig
from ociimage.tls import TLSConfig
from ocispec.errors import SpecError
from ocispec.image import Descriptor, Index, Manifest, is_index

__all__ = ["PushResult", "push_layout", "push_layout_sync"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class PushResult:
    """What was pushed: the top descriptor (manifest or index) under ``reference``."""

    reference: str
    descriptor: Descriptor
    blobs: int

    @property
    def repo_digest(self) -> str:
        """``repo@sha256:...`` of what was pushed."""
        return parse_reference(self.reference).repo_digest(self.descriptor.digest)


async def _push_manifest_tree(
    client: RegistryClient,
    layout: OCILayout,
    repo: str,
    desc: Descriptor,
    tag: str,
    mount_from: str | None,
) -> int:
    data = layout.read_blob(desc.digest)
    pushed = 0
    try:
        if is_index(desc.media_type):
            for child in Index.from_json(data).manifests:
                if not layout.blob_path(child.digest).exists():
                    # a pull keeps one platform; the registry may have the others already
                    if await client.head_manifest(repo, child.digest) is None:
                        raise LayoutError(
                            f"{layout.root} lacks manifest {child.digest} ({child.platform}) "
                            f"of index {desc.digest}, and {client.host}/{repo} does not have it"
                        )
                    continue
                pushed += await _push_manifest_tree(
                    client, layout, repo, child, child.digest, mount_from
                )
        else:
            manifest = Manifest.from_json(data)
            for blob in (manifest.config, *manifest.layers):
                content = await asyncio.to_thread(layout.read_blob, blob.digest)
                await client.push_blob(repo, content, blob, mount_from=mount_from)
                pushed += 1
    except SpecError as err:
        raise LayoutError(
            f"{layout.root}: blob {desc.digest} is not a valid manifest: {err}"
        ) from err
    await client.push_manifest(repo, tag, data, desc.media_type)
    return pushed


async def push_layout(
    root: str | Path,
    reference: str,
    *,
    name: str | None = None,
    registries: RegistriesConfig | None = None,
    credentials: Credentials | None = None,
    credential_store: CredentialStore | None = None,
    tls: TLSConfig | None = None,
    retry: RetryPolicy | None = None,
    mount_from: str | None = None,
) -> PushResult:
    """Push the layout entry ``name`` (the only one when None) to ``reference``."""
    layout = OCILayout(root)
    desc = layout.find(name)
    ref = parse_reference(reference)
    registries = registries or RegistriesConfig()
    if credentials is None:
        credentials = (credential_store or CredentialStore()).lookup(ref.name)
    async with RegistryClient(
        ref.domain,
        credentials=credentials,
        insecure=registries.is_insecure(ref.domain),
        tls=tls,
        retry=retry,
    ) as client:
        blobs = await _push_manifest_tree(
            client,
            layout,
            ref.path,
            desc,
            ref.tag_or_latest if not ref.digest else ref.digest,
            mount_from,
        )
    log.info("event=pushed reference=%s digest=%s blobs=%d", ref, desc.digest, blobs)
    top = Descriptor(media_type=desc.media_type, digest=desc.digest, size=desc.size)
    return PushResult(reference=str(ref.with_default_tag()), descriptor=top, blobs=blobs)


def push_layout_sync(
    root: str | Path,
    reference: str,
    *,
    name: str | None = None,
    registries: RegistriesConfig | None = None,
    credentials: Credentials | None = None,
    credential_store: CredentialStore | None = None,
    mount_from: str | None = None,
) -> PushResult:
    """:func:`push_layout` for synchronous code (runs its own event loop)."""
    return asyncio.run(
        push_layout(
            root,
            reference,
            name=name,
            registries=registries,
            credentials=credentials,
            credential_store=credential_store,
            mount_from=mount_from,
        )
    )
