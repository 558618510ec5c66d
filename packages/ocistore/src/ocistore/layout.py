"""Import from and export to OCI image layout directories (image-spec ``image-layout.md``)."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ocispec.errors import SpecError
from ocispec.image import (
    BLOBS_DIR,
    INDEX_FILE,
    LAYOUT_FILE,
    Annotation,
    Descriptor,
    ImageLayout,
    Index,
    Manifest,
    MediaType,
    Platform,
    PlatformMatcher,
    blob_path,
    host_platform,
    is_index,
    is_manifest,
)
from ocistore.errors import LayoutError

if TYPE_CHECKING:
    from ocistore.images import Image
    from ocistore.store import Store

__all__ = ["export_image", "import_layout"]

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


def _copy_in(store: Store, layout: Path, desc: Descriptor) -> None:
    """Copy one blob into the store through a verifying writer."""
    if store.has_blob(desc.digest):
        return
    src = blob_path(layout, desc.digest)
    if not src.is_file():
        raise LayoutError(f"layout {layout} lacks blob {desc.digest}")
    writer = store.open_blob(desc)
    try:
        with src.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                writer.write(chunk)
        writer.commit()
    except BaseException:
        writer.abort()
        raise


def _read_index(path: Path) -> Index:
    try:
        return Index.from_json(path.read_bytes())
    except (OSError, SpecError) as err:
        raise LayoutError(f"cannot read {path}: {err}") from err


def import_layout(
    store: Store,
    layout: str | Path,
    *,
    names: Sequence[str] | None = None,
    platform: Platform | str | None = None,
) -> list[Image]:
    """Import every image ``index.json`` lists (an index entry: its best ``platform`` match).

    Each image is named by its ``org.opencontainers.image.ref.name`` annotation when
    that is a full reference (contains ``/`` or ``:``), or by ``names`` if given.
    """
    root = Path(layout)
    if not (root / LAYOUT_FILE).is_file():
        raise LayoutError(f"{root} is not an OCI image layout (no {LAYOUT_FILE})")
    top = _read_index(root / INDEX_FILE)
    matcher = PlatformMatcher(platform or host_platform())
    imported: list[Image] = []
    for entry in top.manifests:
        index: Descriptor | None = None
        manifest = entry
        if is_index(entry.media_type):
            _copy_in(store, root, entry)
            nested = Index.from_json(store.blobs.read(entry.digest))
            chosen = matcher.select(nested.manifests)
            if not chosen:
                raise LayoutError(f"index {entry.digest} has no image for {matcher}")
            index, manifest = entry, chosen[0]
        if not is_manifest(manifest.media_type):
            log.info("skipping layout entry media_type=%s", manifest.media_type)
            continue
        _copy_in(store, root, manifest)
        doc = Manifest.from_json(store.blobs.read(manifest.digest))
        for desc in (doc.config, *doc.layers):
            _copy_in(store, root, desc)
        ref = entry.annotations.get(Annotation.REF_NAME, "")
        image_names = list(names) if names is not None else ([ref] if "/" in ref else [])
        imported.append(store.commit_image(manifest=manifest, names=image_names, index=index))
    return imported


def export_image(store: Store, ref: str, layout: str | Path, *, name: str | None = None) -> None:
    """Write image ``ref`` into the OCI layout at ``layout`` (created or extended).

    The index entry is annotated with ``name`` (default: the image's first name).
    """
    image = store.image(ref)
    root = Path(layout)
    root.mkdir(parents=True, exist_ok=True)
    (root / BLOBS_DIR).mkdir(exist_ok=True)
    (root / LAYOUT_FILE).write_bytes(ImageLayout().to_bytes())
    doc = Manifest.from_json(store.blobs.read(image.manifest_digest))
    for digest in (image.manifest_digest, doc.config.digest, *(d.digest for d in doc.layers)):
        target = blob_path(root, digest)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            shutil.copyfile(store.blobs.path(digest), tmp)
            tmp.rename(target)
    label = name if name is not None else (image.names[0] if image.names else "")
    entry = Descriptor(
        media_type=image.manifest_media_type,
        digest=image.manifest_digest,
        size=store.blobs.size(image.manifest_digest),
        annotations={Annotation.REF_NAME: label} if label else {},
    )
    index_path = root / INDEX_FILE
    current = _read_index(index_path) if index_path.exists() else Index(manifests=())
    kept = [
        m
        for m in current.manifests
        if not (label and m.annotations.get(Annotation.REF_NAME) == label)
        and m.digest != entry.digest
    ]
    new = Index(media_type=MediaType.IMAGE_INDEX, manifests=(*kept, entry))
    tmp = index_path.with_name(INDEX_FILE + ".tmp")
    tmp.write_text(json.dumps(new.to_dict(), separators=(",", ":")))
    tmp.rename(index_path)
    log.info("exported image id=%s layout=%s name=%s", image.id, root, label)
