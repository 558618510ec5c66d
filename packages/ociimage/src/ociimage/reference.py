"""Image references: the distribution reference grammar, normalisation and familiar names.

``busybox`` normalises to ``docker.io/library/busybox``, ``me/app:1`` to
``docker.io/me/app:1``; a first component with a ``.`` or ``:``, or ``localhost``, is a
registry host (``127.0.0.1:5000/app``, ``[::1]:5000/app``). :meth:`Reference.familiar`
is the short spelling for display, as Docker prints it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ociimage.errors import InvalidReferenceError
from ocispec.errors import InvalidDigestError
from ocispec.image import Digest

__all__ = [
    "DEFAULT_DOMAIN",
    "DEFAULT_TAG",
    "Reference",
    "is_qualified",
    "parse_reference",
    "split_reference",
]

#: The registry a name without a host belongs to.
DEFAULT_DOMAIN = "docker.io"
#: Docker Hub's namespace for single-component names (``busybox``).
OFFICIAL_NAMESPACE = "library"
#: The tag a reference without tag or digest means.
DEFAULT_TAG = "latest"
_LEGACY_DOMAINS = frozenset({"index.docker.io", "registry-1.docker.io"})
_NAME_TOTAL_MAX = 255

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[[a-fA-F0-9:]+\]"
_HOST = rf"(?:{_DOMAIN_NAME}|{_IPV6})"
_DOMAIN_RE = re.compile(rf"{_HOST}(?::[0-9]+)?")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_HEX64_RE = re.compile(r"[a-f0-9]{64}")


@dataclass(frozen=True, kw_only=True)
class Reference:
    """A fully qualified image reference: ``domain/path[:tag][@digest]``.

    ``domain`` is the registry host (with port), ``path`` the repository inside it. A
    reference with neither tag nor digest means the ``latest`` tag (see :attr:`tag_or_latest`).
    """

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """``domain/path``: the repository's full name."""
        return f"{self.domain}/{self.path}"

    @property
    def tag_or_latest(self) -> str:
        """The tag, ``latest`` when neither a tag nor a digest was given, else empty."""
        if self.tag or self.digest:
            return self.tag
        return DEFAULT_TAG

    @property
    def manifest_reference(self) -> str:
        """What to ask the manifests endpoint for: the digest when pinned, else the tag."""
        return self.digest or self.tag_or_latest

    def with_tag(self, tag: str) -> Reference:
        """The same repository with ``tag`` (and no digest)."""
        if not _TAG_RE.fullmatch(tag):
            raise InvalidReferenceError(f"invalid tag {tag!r}")
        return replace(self, tag=tag, digest="")

    def with_digest(self, digest: str) -> Reference:
        """The same repository pinned to ``digest`` (the tag is kept for display)."""
        return replace(self, digest=_check_digest(digest, digest))

    def with_default_tag(self) -> Reference:
        """The reference with ``latest`` filled in when it has neither tag nor digest."""
        return replace(self, tag=self.tag_or_latest)

    def repo_digest(self, digest: str) -> str:
        """``domain/path@digest``: how an image is recorded by digest."""
        return f"{self.name}@{digest}"

    def familiar(self) -> str:
        """The short display form: ``busybox:latest`` for ``docker.io/library/busybox:latest``."""
        name = self.name
        if self.domain == DEFAULT_DOMAIN:
            name = self.path
            prefix = OFFICIAL_NAMESPACE + "/"
            if name.startswith(prefix) and "/" not in name[len(prefix) :]:
                name = name[len(prefix) :]
        return _join(name, self.tag, self.digest)

    def __str__(self) -> str:
        return _join(self.name, self.tag, self.digest)


def _join(name: str, tag: str, digest: str) -> str:
    out = name
    if tag:
        out += f":{tag}"
    if digest:
        out += f"@{digest}"
    return out


def _check_digest(digest: str, whole: str) -> str:
    if not _DIGEST_RE.fullmatch(digest):
        raise InvalidReferenceError(f"invalid digest {digest!r} in reference {whole!r}")
    try:
        return str(Digest(digest))
    except InvalidDigestError as err:
        raise InvalidReferenceError(f"invalid digest in reference {whole!r}: {err}") from err


def _looks_like_domain(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def split_reference(text: str) -> tuple[str, str, str, str]:
    """Split ``text`` into (domain, path, tag, digest) without defaulting anything.

    ``domain`` is empty when the first component is not a host. Raises
    :class:`InvalidReferenceError` saying which part is wrong.
    """
    if not text:
        raise InvalidReferenceError("empty image reference")
    if text != text.strip():
        raise InvalidReferenceError(f"image reference {text!r} has surrounding whitespace")
    rest, digest = text, ""
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        digest = _check_digest(digest, text)
    domain = ""
    first, slash, remainder = rest.partition("/")
    if slash and _looks_like_domain(first):
        if not _DOMAIN_RE.fullmatch(first):
            raise InvalidReferenceError(f"invalid registry host {first!r} in reference {text!r}")
        domain, rest = first, remainder
    tag = ""
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise InvalidReferenceError(
                f"invalid tag {tag!r} in reference {text!r}: want [A-Za-z0-9_][A-Za-z0-9_.-]"
                "{0,127}"
            )
    if not rest:
        raise InvalidReferenceError(f"reference {text!r} has no repository name")
    if not _PATH_RE.fullmatch(rest):
        if rest.lower() != rest and _PATH_RE.fullmatch(rest.lower()):
            raise InvalidReferenceError(
                f"repository name {rest!r} in reference {text!r} must be lowercase"
            )
        raise InvalidReferenceError(
            f"invalid repository name {rest!r} in reference {text!r}: components are "
            "lowercase letters and digits separated by '.', '_', '__' or '-'"
        )
    full_name = f"{domain}/{rest}" if domain else rest
    if len(full_name) > _NAME_TOTAL_MAX:
        raise InvalidReferenceError(
            f"repository name in {text!r} is longer than {_NAME_TOTAL_MAX} characters"
        )
    return domain, rest, tag, digest


def is_qualified(text: str) -> bool:
    """Whether ``text`` names its registry host (else it is a short name)."""
    return bool(split_reference(text)[0])


def parse_reference(text: str) -> Reference:
    """Parse and normalise ``text``: add ``docker.io`` and ``library/`` where Docker would.

    A bare 64-hex-digit name is refused: it looks like an image ID, not a repository.
    """
    domain, path, tag, digest = split_reference(text)
    if not domain and _HEX64_RE.fullmatch(path):
        raise InvalidReferenceError(
            f"{text!r} is a 64-hex-digit string: that is an image ID, not a repository name"
        )
    if not domain or domain in _LEGACY_DOMAINS:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"{OFFICIAL_NAMESPACE}/{path}"
    return Reference(domain=domain, path=path, tag=tag, digest=digest)
