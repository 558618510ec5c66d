"""Reading bodies that are not layer blobs: capped, and with any Content-Encoding undone.

ociimage asks for ``Accept-Encoding: identity`` so the bytes received are the bytes a
digest names. A server may compress anyway: :func:`decode` undoes gzip and deflate with
the same cap on the decoded size (no decompression bomb gets through) and refuses other
codings clearly. Reading stops at the cap, before the rest is received.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ociimage.errors import RegistryError, ResponseTooLargeError

if TYPE_CHECKING:
    import httpx

__all__ = ["content_encoding", "decode", "read_capped", "read_prefix", "too_large"]


def too_large(url: object, limit: int, what: str) -> ResponseTooLargeError:
    return ResponseTooLargeError(f"{url}: {what} larger than the {limit}-byte limit; cut off")


def content_encoding(headers: Mapping[str, str]) -> str:
    """The Content-Encoding of a response's headers (lower-case names, or httpx's),
    lower case ('' for none or identity)."""
    value = headers.get("content-encoding", "").strip().lower()
    return "" if value == "identity" else value


async def read_capped(response: httpx.Response, limit: int, what: str) -> bytes:
    """The body exactly as received (still encoded), refusing more than ``limit`` bytes.

    Raises :class:`ResponseTooLargeError` naming the URL and the limit as soon as the
    announced length or the bytes received pass it. httpx errors propagate.
    """
    announced = response.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > limit:
        raise too_large(response.url, limit, f"{what} ({announced} bytes announced)")
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > limit:
            raise too_large(response.url, limit, what)
        parts.append(chunk)
    return b"".join(parts)


def _decompressor(encoding: str, url: object) -> zlib._Decompress:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj(32 + zlib.MAX_WBITS)  # zlib wrapper (or gzip), as sent
    raise RegistryError(
        f"{url}: unsupported Content-Encoding {encoding!r} (ociimage asks for identity "
        "and undoes only gzip or deflate)"
    )


def decode(raw: bytes, encoding: str, limit: int, url: object, what: str) -> bytes:
    """``raw`` with its Content-Encoding undone; the decoded bytes are capped too."""
    if not encoding:
        return raw
    decompressor = _decompressor(encoding, url)
    try:
        data = decompressor.decompress(raw, limit + 1)
        if len(data) > limit or decompressor.unconsumed_tail:
            raise too_large(url, limit, f"{what} (decoded from {encoding})")
        if not decompressor.eof:
            raise RegistryError(f"{url}: {what} sent with Content-Encoding {encoding} is truncated")
    except zlib.error as err:
        raise RegistryError(
            f"{url}: {what} sent with Content-Encoding {encoding} is corrupt: {err}"
        ) from err
    return data


async def read_prefix(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of an error body, decoded when possible; the rest is
    never read (the connection is closed instead of drained)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        parts.append(chunk[: limit - size])
        size += len(parts[-1])
        if size >= limit:
            break
    raw = b"".join(parts)
    encoding = content_encoding(response.headers)
    if not encoding:
        return raw
    try:
        return _decompressor(encoding, response.url).decompress(raw, limit)
    except (RegistryError, zlib.error):
        return raw
