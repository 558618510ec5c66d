"""Finding a stored image by what the kubelet calls it: id, id prefix, name or digest.

ocistore resolves exact ids, id prefixes, stored names and repo digests. The kubelet
may also use a familiar or short name (``busybox``, ``docker.io/busybox:1``); those are
normalised with ociimage's reference rules and, when unqualified, tried against the
registries.conf search registries and aliases in order, as CRI-O does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ociimage.errors import ImageError, ShortNameError
from ociimage.reference import Reference, is_qualified, parse_reference
from ociimage.registries import RegistriesConfig
from ocistore import AsyncStore, Image, ImageNotFoundError, Store

__all__ = ["candidate_names", "find_image", "find_stored_image"]

_log = logging.getLogger(__name__)


def _forms(ref: Reference) -> list[str]:
    """The spellings a stored image may have for ``ref``: tagged, and by digest alone."""
    forms = [str(ref.with_default_tag())]
    if ref.digest:
        forms.append(ref.repo_digest(ref.digest))
    return forms


def _searched(name: str, registries: RegistriesConfig) -> tuple[Reference, ...]:
    found: list[Reference] = []
    for host in registries.unqualified_search_registries:
        try:
            found.append(parse_reference(f"{host}/{name}"))
        except ImageError:
            continue
    return tuple(found)


def candidate_names(name: str, registries: RegistriesConfig) -> list[str]:
    """Fully qualified names ``name`` may be stored under, most likely first."""
    try:
        if is_qualified(name):
            return _forms(parse_reference(name))
        candidates: tuple[Reference, ...] = registries.resolve(name).candidates
    except ShortNameError:
        # enforcing mode refuses to *pull* an ambiguous short name, but an image stored
        # under any of the search registries is still the one the name denotes locally
        candidates = _searched(name, registries)
    except ImageError:
        return []  # not a reference at all: only ocistore's own lookups apply
    names: list[str] = []
    for candidate in candidates:
        names += [form for form in _forms(candidate) if form not in names]
    return names


async def find_image(store: AsyncStore, name: str, registries: RegistriesConfig) -> Image | None:
    """The stored image ``name`` denotes, or None when there is none.

    An id prefix matching several images raises ocistore's ``AmbiguousImageError``.
    """
    if not name:
        return None
    try:
        return await store.image(name)
    except ImageNotFoundError:
        pass
    for candidate in candidate_names(name, registries):
        if candidate == name:
            continue
        try:
            return await store.image(candidate)
        except ImageNotFoundError:
            continue
    _log.debug("image not found", extra={"image": name})
    return None


def find_stored_image(
    store: Store, name: str, registries: Callable[[], RegistriesConfig]
) -> Image | None:
    """Blocking :func:`find_image` (for a worker thread); ``registries`` is called only
    when ``name`` is not stored as it is spelt."""
    if not name:
        return None
    try:
        return store.image(name)
    except ImageNotFoundError:
        pass
    for candidate in candidate_names(name, registries()):
        if candidate == name:
            continue
        try:
            return store.image(candidate)
        except ImageNotFoundError:
            continue
    _log.debug("image not found", extra={"image": name})
    return None
