"""Content digests (``algorithm:encoded``), as go-digest defines them."""

from __future__ import annotations

import hashlib
import re

from ocispec.errors import InvalidDigestError

__all__ = ["Digest"]

_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_KNOWN = {"sha256": 64, "sha512": 128}


class Digest(str):
    """A validated digest string such as ``sha256:9f86d0...``.

    It is a ``str``, so it goes anywhere a digest string does (``Descriptor.digest``).
    Registered algorithms (sha256, sha512) must have lower-case hex of the right length;
    others only need to match the image-spec grammar.
    """

    __slots__ = ()

    def __new__(cls, value: str) -> Digest:
        if not _GRAMMAR.match(value):
            raise InvalidDigestError(f"invalid digest {value!r}")
        algorithm, encoded = value.split(":", 1)
        size = _KNOWN.get(algorithm)
        if size is not None and (len(encoded) != size or not re.fullmatch(r"[a-f0-9]+", encoded)):
            raise InvalidDigestError(
                f"invalid {algorithm} digest {value!r}: want {size} lower-case hex digits"
            )
        return super().__new__(cls, value)

    @classmethod
    def from_bytes(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """The digest of ``data`` (sha256 unless told otherwise)."""
        if algorithm not in _KNOWN:
            raise InvalidDigestError(f"unsupported digest algorithm {algorithm!r}")
        return cls(f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}")

    @property
    def algorithm(self) -> str:
        """``sha256`` in ``sha256:abc...``."""
        return self.split(":", 1)[0]

    @property
    def encoded(self) -> str:
        """``abc...`` in ``sha256:abc...``."""
        return self.split(":", 1)[1]

    def hasher(self) -> hashlib._Hash:
        """A fresh hash object of this digest's algorithm, to verify streamed content."""
        if self.algorithm not in _KNOWN:
            raise InvalidDigestError(f"unsupported digest algorithm {self.algorithm!r}")
        return hashlib.new(self.algorithm)

    def verify(self, data: bytes) -> bool:
        """Whether ``data`` hashes to this digest."""
        h = self.hasher()
        h.update(data)
        return h.hexdigest() == self.encoded
