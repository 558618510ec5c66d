"""Ceilings on what a registry (or a token or signature server) may make ociimage hold.

crid runs as root on every node and pulls from registries that may lie: every body that
is not a layer blob is read into memory, so each has a cap, and a body past its cap is
cut off with :class:`~ociimage.errors.ResponseTooLargeError` naming the URL and the
limit. Layer blobs stream to disk and are bounded by their descriptor's size instead.
The defaults follow containers/image where it has one (4 MiB manifests, configs and
signatures).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "ResponseLimits"]


@dataclass(frozen=True, kw_only=True)
class ResponseLimits:
    """Byte caps per kind of body, on the bytes received and on the decoded bytes.

    * ``max_manifest_bytes``: a manifest, an index, a referrers list or a tag list;
    * ``max_config_bytes``: an image config blob;
    * ``max_token_bytes``: a token service's answer;
    * ``max_error_bytes``: an error (4xx/5xx) body; longer ones are truncated, not fatal:
      only the error code and the first few hundred characters are ever shown;
    * ``max_signature_bytes``: one lookaside signature, the registry signature API's
      answer, or one sigstore payload / bundle blob;
    * ``max_lookaside_signatures``: how many ``signature-N`` files a lookaside may list.
    """

    max_manifest_bytes: int = 4 << 20
    max_config_bytes: int = 4 << 20
    max_token_bytes: int = 1 << 20
    max_error_bytes: int = 64 << 10
    max_signature_bytes: int = 4 << 20
    max_lookaside_signatures: int = 64


#: The limits every client uses unless given others.
DEFAULT_LIMITS = ResponseLimits()
