"""What every registry request carries: shared by the client and the CLI's prefetch,
which must build the very same request (see :mod:`ociimage._prefetch`)."""

from __future__ import annotations

from ocispec.image.mediatype import MediaType

__all__ = ["MANIFEST_ACCEPT", "MANIFEST_MEDIA_TYPES", "USER_AGENT", "plain_headers"]

USER_AGENT = "ociimage/0.1"

#: What a pull accepts, best first.
MANIFEST_MEDIA_TYPES = (
    MediaType.IMAGE_INDEX,
    MediaType.IMAGE_MANIFEST,
    MediaType.DOCKER_MANIFEST_LIST,
    MediaType.DOCKER_MANIFEST,
)
#: The Accept header of a manifest GET.
MANIFEST_ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)


def plain_headers(headers: dict[str, str], authorization: str | None = None) -> dict[str, str]:
    """What httpx would send: its defaults, the request's, a known authorization.

    Digests name the bytes as stored: no content coding on top, please.
    """
    out = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers}
    if authorization:
        out["Authorization"] = authorization
    return out


def scope(repository: str, actions: str = "pull") -> str:
    """A token scope for ``repository`` (``repository:<name>:<actions>``)."""
    return f"repository:{repository}:{actions}"
