"""A blob body through httpx: the path of a download the threaded GET declined.

:class:`~ociimage.client.RegistryClient` reads a layer's body in a worker thread
(:mod:`ociimage._bodies_threaded`); anything but the plain answer (an authentication
challenge, a retry, an error) is sent again through httpx, whose chunks this module
hands to the blob's writer.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from ociimage._content import absorb
from ociimage._wire import scope
from ociimage.errors import SizeMismatchError
from ociimage.sink import BlobWriter
from ocispec.image import Descriptor

if TYPE_CHECKING:
    from ociimage._client_core import ClientCore

__all__ = ["BATCH_BYTES", "Dropped", "fetch_range_httpx"]

#: Bytes received before a batch is handed to a worker thread to hash and write: large
#: enough that the thread hop is rare, small enough that four downloads at once hold
#: little memory (a batch is received while the one before it is written).
BATCH_BYTES = 512 << 10


class Dropped(Exception):  # noqa: N818 - a signal inside the client
    """The connection broke while a body was read: resume from what was kept."""


async def fetch_range_httpx(
    client: ClientCore,
    path: str,
    repository: str,
    descriptor: Descriptor,
    writer: BlobWriter,
    hasher: hashlib._Hash | None,
    offset: int,
    headers: dict[str, str],
    on_progress: Callable[[int], None] | None,
) -> None:
    """``client``'s download of a blob through httpx, once the body thread declined it:
    batches of received chunks are hashed and written by a worker thread while the next
    arrive. A broken connection raises :class:`Dropped` (what arrived intact is kept)."""
    import httpx

    try:
        async with client._stream(
            "GET", path, scopes=[scope(repository)], headers=headers, ok=(200, 206)
        ) as response:
            skip = offset if (offset and response.status_code == 200) else 0
            received = offset
            parts: list[bytes] = []
            pending = 0
            # double buffering: the next batch downloads while the last one is written
            writing: asyncio.Future[None] | None = None
            try:
                async for chunk in response.aiter_raw():
                    if skip:
                        cut = min(skip, len(chunk))
                        chunk, skip = chunk[cut:], skip - cut
                    if not chunk:
                        continue
                    received += len(chunk)
                    if received > descriptor.size:
                        raise SizeMismatchError(
                            f"blob {descriptor.digest} from {client.host}: more than the "
                            f"{descriptor.size} bytes its descriptor says"
                        )
                    parts.append(chunk)
                    pending += len(chunk)
                    if on_progress is not None:
                        on_progress(len(chunk))
                    if pending >= BATCH_BYTES:
                        batch, parts, pending = parts, [], 0
                        if writing is not None:
                            await writing
                        writing = asyncio.ensure_future(
                            asyncio.to_thread(absorb, writer, hasher, batch)
                        )
            finally:
                if writing is not None:
                    await asyncio.shield(writing)
                if parts:
                    # what arrived intact is kept: a retry resumes after it
                    await asyncio.to_thread(absorb, writer, hasher, parts)
    except httpx.TimeoutException as err:
        raise client._stalled(err) from err
    except httpx.TransportError as err:
        raise Dropped(f"{type(err).__name__}: {err}") from err
