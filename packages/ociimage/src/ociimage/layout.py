"""An OCI image layout directory as a pull sink (:class:`OCILayoutSink`) and its reader.

Blobs are written to ``.ingest/`` first, verified (size and digest) and renamed into
``blobs/<alg>/<hex>``, so a blob is either complete or absent. ``index.json`` is
rewritten atomically (temp file and rename, under a lock) when an image is committed;
each name is an entry whose ``org.opencontainers.image.ref.name`` (and containerd's
``io.containerd.image.name``) is the fully qualified reference, which is what
``skopeo``'s and ``umoci``'s ``oci:DIR:NAME`` look up.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ociimage.errors import DigestMismatchError, LayoutError, SizeMismatchError
from ocispec.errors import SpecError
from ocispec.image import (
    INDEX_FILE,
    LAYOUT_FILE,
    Annotation,
    Descriptor,
    Digest,
    ImageLayout,
    Index,
    MediaType,
    blob_path,
)

__all__ = ["LayoutImage", "OCILayout", "OCILayoutSink"]

_INGEST = ".ingest"
#: Bytes per ``write``: each write gets page-cache folios of its own size where the
#: filesystem has large folios (ext4 on this machine's Linux 6.18; XFS). On a VM that
#: hands free memory back to its host (free page reporting), large folios come from
#: blocks the host must fault in again: with 1 MiB writes, 7 of 15 pulls of a 127 MB
#: image took 0.15-0.3 s more system time (bench/ociimage/pull.py); with 32 KiB writes
#: (Go's io.Copy size, what skopeo writes) none did, for about 0.02 s more CPU.
_WRITE_BYTES = 32 << 10
_index_lock = threading.Lock()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _LayoutBlobWriter:
    """Writes one blob to a temp file, hashing; commit verifies and renames it into place."""

    def __init__(
        self,
        layout: Path,
        descriptor: Descriptor,
        *,
        durable: bool = False,
        before_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.descriptor = descriptor
        self._durable = durable
        self._before_commit = before_commit
        self._digest = Digest(descriptor.digest)
        self._hasher = self._digest.hasher()
        self._final = blob_path(layout, descriptor.digest)
        ingest = layout / _INGEST
        ingest.mkdir(parents=True, exist_ok=True)
        self._temp = ingest / f"{self._digest.encoded}.{secrets.token_hex(4)}"
        # unbuffered: writes arrive in large batches, a buffer would only copy them
        self._file = open(self._temp, "xb", buffering=0)  # noqa: SIM115 - closed in commit/abort
        self._offset = 0
        self._done = False

    @property
    def offset(self) -> int:
        return self._offset

    def write(self, data: bytes | memoryview) -> None:
        if self._done:
            raise LayoutError(f"blob {self.descriptor.digest} is already committed or aborted")
        view = memoryview(data)
        while view:
            written = self._file.write(view[:_WRITE_BYTES])
            view = view[written or 0 :]
        self._hasher.update(data)
        self._offset += len(data)

    def commit(self) -> None:
        if self._done:
            raise LayoutError(f"blob {self.descriptor.digest} is already committed or aborted")
        try:
            if self._offset != self.descriptor.size:
                raise SizeMismatchError(
                    f"blob {self.descriptor.digest}: {self._offset} bytes written, "
                    f"descriptor says {self.descriptor.size}"
                )
            if self._hasher.hexdigest() != self._digest.encoded:
                raise DigestMismatchError(
                    f"blob {self.descriptor.digest}: content hashes to "
                    f"{self._digest.algorithm}:{self._hasher.hexdigest()}"
                )
            self._file.flush()
            if self._durable:
                os.fsync(self._file.fileno())
            self._file.close()
            self._before_commit()
            self._final.parent.mkdir(parents=True, exist_ok=True)
            self._temp.replace(self._final)
            self._done = True
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        self._done = True
        # a close may report a deferred write error (a full disk over NFS, say): the file
        # is closed all the same, its bytes are being dropped, and the temp file must go
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._temp.unlink()


class LayoutImage:
    """One entry of a layout's ``index.json``: its name and descriptor."""

    __slots__ = ("descriptor", "name")

    def __init__(self, *, name: str, descriptor: Descriptor) -> None:
        self.name = name
        self.descriptor = descriptor

    def __repr__(self) -> str:
        return f"LayoutImage(name={self.name!r}, descriptor={self.descriptor!r})"


class OCILayout:
    """Reads an OCI image layout directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def check(self) -> None:
        """Raise :class:`LayoutError` unless ``root`` holds a layout of a known version."""
        try:
            marker = ImageLayout.from_json((self.root / LAYOUT_FILE).read_bytes())
        except FileNotFoundError as err:
            raise LayoutError(f"{self.root} is not an OCI image layout (no {LAYOUT_FILE})") from err
        except (OSError, SpecError) as err:
            raise LayoutError(f"{self.root}/{LAYOUT_FILE}: {err}") from err
        if not marker.image_layout_version.startswith("1."):
            raise LayoutError(
                f"{self.root}: unsupported layout version {marker.image_layout_version}"
            )

    def index(self) -> Index:
        """The layout's ``index.json``."""
        self.check()
        try:
            return Index.from_json((self.root / INDEX_FILE).read_bytes())
        except (OSError, SpecError) as err:
            raise LayoutError(f"{self.root}/{INDEX_FILE}: {err}") from err

    def images(self) -> list[LayoutImage]:
        """The named entries of ``index.json``."""
        out = []
        for desc in self.index().manifests:
            name = desc.annotations.get(Annotation.REF_NAME, "")
            out.append(LayoutImage(name=name, descriptor=desc))
        return out

    def find(self, name: str | None = None) -> Descriptor:
        """The descriptor named ``name`` (its full reference or tag); the only entry if None."""
        images = self.images()
        if name is None:
            if len(images) != 1:
                raise LayoutError(f"{self.root} holds {len(images)} images: name one")
            return images[0].descriptor
        for image in images:
            if image.name == name or image.name.rsplit(":", 1)[-1] == name:
                return image.descriptor
        known = ", ".join(i.name for i in images) or "none"
        raise LayoutError(f"{self.root} has no image named {name!r} (it has: {known})")

    def blob_path(self, digest: str) -> Path:
        """Where blob ``digest`` lives."""
        return blob_path(self.root, digest)

    def read_blob(self, digest: str) -> bytes:
        """Blob ``digest``'s bytes, verified."""
        try:
            data = self.blob_path(digest).read_bytes()
        except FileNotFoundError as err:
            raise LayoutError(f"{self.root}: blob {digest} is missing") from err
        if not Digest(digest).verify(data):
            raise DigestMismatchError(f"{self.root}: blob {digest} is corrupt")
        return data


class OCILayoutSink(OCILayout):
    """A :class:`~ociimage.sink.PullSink` writing an OCI image layout at ``root``.

    Nothing is written until the first blob: a pull that fails before downloading (a
    policy rejection, an unknown image) leaves no directory and no empty layout behind.
    ``oci-layout`` and an empty ``index.json`` are written when the first blob is
    committed (before its rename), so no blob is visible in a directory that is not yet
    a layout. An existing layout is checked at once and only ever added to.

    ``durable=True`` fsyncs every blob before renaming it into place, so a power loss
    cannot leave a visible blob with lost content; it costs a disk flush per blob (as
    much as the download itself on this kind of disk), so it is off by default, as in
    skopeo. ``index.json`` is always written with fsync and rename.
    """

    def __init__(self, root: str | Path, *, durable: bool = False) -> None:
        super().__init__(root)
        self.durable = durable
        self._created = False
        if (self.root / LAYOUT_FILE).exists():
            self.check()

    def _ensure_layout(self) -> None:
        """Create the directory, ``oci-layout`` and an empty ``index.json`` if missing."""
        if self._created:
            return
        with _index_lock:
            self.root.mkdir(parents=True, exist_ok=True)
            _create_exclusive(self.root / LAYOUT_FILE, ImageLayout().to_bytes())
            self.check()
            _create_exclusive(
                self.root / INDEX_FILE, Index(media_type=MediaType.IMAGE_INDEX).to_bytes()
            )
            self._created = True

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def open_blob(self, descriptor: Descriptor) -> _LayoutBlobWriter:
        # the writer makes the directories it needs; the layout's own files (written
        # with fsync, under a lock) wait for the first commit: the downloads of a pull
        # open their blobs at once, and none of them waits for those disk flushes
        return _LayoutBlobWriter(
            self.root, descriptor, durable=self.durable, before_commit=self._ensure_layout
        )

    def commit_image(
        self,
        *,
        manifest: Descriptor,
        names: Sequence[str],
        index: Descriptor | None = None,
    ) -> None:
        target = index if index is not None else manifest
        for desc in (manifest, target):
            if not self.has_blob(desc.digest):
                raise LayoutError(f"cannot commit an image whose blob {desc.digest} is missing")
        entry = Descriptor(media_type=target.media_type, digest=target.digest, size=target.size)
        self._ensure_layout()
        with self._locked():
            current = self.index()
            labels = list(names)
            manifests = [
                d
                for d in current.manifests
                if d.annotations.get(Annotation.REF_NAME, "") not in labels
            ]
            for name in labels:
                annotations = {Annotation.REF_NAME.value: name}
                annotations[Annotation.CONTAINERD_IMAGE_NAME.value] = name
                manifests.append(entry.replace(annotations=annotations))
            if not labels and not any(d.digest == target.digest for d in manifests):
                manifests.append(entry)
            updated = current.replace(manifests=tuple(manifests))
            if not updated.media_type:
                updated = updated.replace(media_type=MediaType.IMAGE_INDEX)
            _atomic_write(self.root / INDEX_FILE, updated.to_bytes())
        with contextlib.suppress(OSError):
            (self.root / _INGEST).rmdir()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # threads of this process, then other processes (flock on the marker file)
        with _index_lock, open(self.root / LAYOUT_FILE, "rb") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _create_exclusive(path: Path, data: bytes) -> None:
    """Write ``path`` (complete, fsynced) unless it exists; never replaces another's file."""
    if path.exists():
        return
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    with open(temp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(temp, path)  # fails if another writer created it meanwhile
    except FileExistsError:
        pass
    else:
        _fsync_dir(path.parent)
    finally:
        temp.unlink()


def _atomic_write(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    with open(temp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    temp.replace(path)
    _fsync_dir(path.parent)
