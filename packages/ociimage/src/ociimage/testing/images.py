"""Small, deterministic OCI test images built from the static ``/usr/bin/busybox``.

Each builder returns a frozen description (:class:`BuiltImage` or
:class:`BuiltIndex`) that holds the exact blob bytes to push and the facts a test
can check after pulling and unpacking: manifest, config and layer digests,
diff_ids, the parsed config, and the merged file tree (:class:`TreeFacts`) that a
correct unpacker must produce, including the paths whiteouts must have removed.

The JSON documents are plain dicts serialised canonically (sorted keys, no
whitespace), with OCI media types. Nothing here talks to a registry: see
:mod:`ociimage.testing.push`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ociimage.testing.layers import (
    Entry,
    Layer,
    build_layer,
    directory,
    file,
    merge_layers,
    opaque,
    sha256_digest,
    symlink,
    whiteout,
)

__all__ = [
    "BUSYBOX",
    "BUSYBOX_APPLETS",
    "CONFIG_MEDIA_TYPE",
    "CREATED",
    "INDEX_MEDIA_TYPE",
    "MANIFEST_MEDIA_TYPE",
    "Blob",
    "BuiltImage",
    "BuiltIndex",
    "Platform",
    "TreeFacts",
    "build_image",
    "busybox_arch",
    "busybox_image",
    "busybox_layer",
    "canonical_json",
    "layered_whiteout_image",
    "multiplatform_index",
    "user_env_image",
]

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
#: Where Debian's busybox-static puts its binary.
BUSYBOX = Path("/usr/bin/busybox")
#: The ``created`` time of every test image and history entry.
CREATED = "2024-01-01T00:00:00Z"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Applets linked into /bin next to busybox (all present in Debian's busybox-static).
BUSYBOX_APPLETS = (
    "[", "cat", "chmod", "chown", "cp", "date", "echo", "env", "false", "grep", "head",
    "hostname", "id", "kill", "ln", "ls", "mkdir", "mount", "mv", "nc", "pidof", "ps",
    "pwd", "readlink", "rm", "sh", "sleep", "stat", "tail", "test", "top", "touch", "true",
    "umount", "uname", "wc", "wget", "whoami",
)  # fmt: skip

_ELF_MACHINES = {0x3E: "amd64", 0xB7: "arm64"}


def canonical_json(doc: Mapping[str, Any]) -> bytes:
    """The bytes pushed for a JSON document: sorted keys, no insignificant whitespace."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Blob:
    """Bytes plus the descriptor facts: media type, digest and size."""

    media_type: str
    data: bytes = field(repr=False)
    digest: str
    size: int

    @classmethod
    def of(cls, media_type: str, data: bytes) -> Blob:
        return cls(media_type, data, sha256_digest(data), len(data))

    @classmethod
    def json(cls, media_type: str, doc: Mapping[str, Any]) -> Blob:
        return cls.of(media_type, canonical_json(doc))

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}

    def parsed(self) -> Any:
        return json.loads(self.data)


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class TreeFacts:
    """The file tree after applying all layers (paths relative, without a leading /)."""

    entries: Mapping[str, Entry] = field(repr=False)
    #: Paths that lower layers had and the top of the stack removed (must not exist).
    absent: frozenset[str] = frozenset()

    @property
    def files(self) -> Mapping[str, str]:
        """Regular files: path -> sha256 digest of the content."""
        return {p: sha256_digest(e.data) for p, e in self.entries.items() if e.kind == "file"}

    @property
    def symlinks(self) -> Mapping[str, str]:
        return {p: e.target for p, e in self.entries.items() if e.kind == "symlink"}

    @property
    def directories(self) -> frozenset[str]:
        return frozenset(p for p, e in self.entries.items() if e.kind == "dir")

    def content(self, path: str) -> bytes:
        """The bytes of regular file *path*."""
        entry = self.entries[path.lstrip("/")]
        if entry.kind != "file":
            raise KeyError(f"{path} is a {entry.kind}, not a file")
        return entry.data

    def owner(self, path: str) -> tuple[int, int]:
        entry = self.entries[path.lstrip("/")]
        return entry.uid, entry.gid

    def mode(self, path: str) -> int:
        return self.entries[path.lstrip("/")].mode


@dataclass(frozen=True)
class BuiltImage:
    """One image manifest with its config and layers, ready to push."""

    repository: str
    tag: str
    platform: Platform
    manifest: Blob
    config: Blob
    layers: tuple[Layer, ...]
    tree: TreeFacts

    @property
    def manifest_digest(self) -> str:
        return self.manifest.digest

    @property
    def config_digest(self) -> str:
        return self.config.digest

    @property
    def layer_digests(self) -> tuple[str, ...]:
        return tuple(layer.digest for layer in self.layers)

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(layer.diff_id for layer in self.layers)

    @property
    def config_doc(self) -> dict[str, Any]:
        """The image config as a fresh dict (``config["config"]`` holds User, Env, ...)."""
        doc: dict[str, Any] = self.config.parsed()
        return doc

    @property
    def manifest_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = self.manifest.parsed()
        return doc

    def reference(self, host: str) -> str:
        """``HOST/REPOSITORY:TAG``."""
        return f"{host}/{self.repository}:{self.tag}"


@dataclass(frozen=True)
class BuiltIndex:
    """An OCI image index over several :class:`BuiltImage` manifests."""

    repository: str
    tag: str
    index: Blob
    images: tuple[BuiltImage, ...]

    @property
    def digest(self) -> str:
        return self.index.digest

    @property
    def manifest_digest(self) -> str:
        return self.index.digest

    @property
    def platforms(self) -> tuple[Platform, ...]:
        return tuple(image.platform for image in self.images)

    def for_platform(self, architecture: str, os: str = "linux") -> BuiltImage:
        for image in self.images:
            if image.platform.architecture == architecture and image.platform.os == os:
                return image
        raise KeyError(f"no {os}/{architecture} image in the index")

    def reference(self, host: str) -> str:
        return f"{host}/{self.repository}:{self.tag}"


def busybox_arch(busybox: Path = BUSYBOX) -> str:
    """The OCI architecture (amd64, arm64) of the busybox binary, read from its ELF header."""
    with busybox.open("rb") as fh:
        header = fh.read(20)
    if header[:4] != b"\x7fELF" or len(header) < 20:
        raise ValueError(f"{busybox} is not an ELF binary")
    machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    try:
        return _ELF_MACHINES[machine]
    except KeyError:
        raise ValueError(f"{busybox}: unsupported ELF machine {machine:#x}") from None


_BASE_USERS = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
_BASE_GROUPS = "root:x:0:\nnogroup:x:65534:\n"


def busybox_entries(busybox: Path = BUSYBOX) -> list[Entry]:
    """The one-layer busybox root file system: /bin/busybox, applet links, /etc, /tmp."""
    entries = [
        directory("bin"),
        file("bin/busybox", busybox.read_bytes(), mode=0o755),
        directory("etc"),
        file("etc/passwd", _BASE_USERS),
        file("etc/group", _BASE_GROUPS),
        directory("root", mode=0o700),
        directory("tmp", mode=0o1777),
        directory("var/tmp", mode=0o1777),
    ]
    entries += [symlink(f"bin/{applet}", "busybox") for applet in BUSYBOX_APPLETS]
    return entries


@functools.cache
def _busybox_layer(busybox: Path, mtime_ns: int, size: int) -> Layer:
    return build_layer(busybox_entries(busybox))


def busybox_layer(busybox: Path = BUSYBOX) -> Layer:
    """The busybox base layer (built once per binary and reused by every image)."""
    st = busybox.stat()
    return _busybox_layer(busybox, st.st_mtime_ns, st.st_size)


def build_image(
    repository: str,
    tag: str,
    layers: Sequence[Layer],
    *,
    platform: Platform,
    config: Mapping[str, Any] | None = None,
    history: Iterable[Mapping[str, Any]] | None = None,
    absent: Iterable[str] = (),
    annotations: Mapping[str, str] | None = None,
) -> BuiltImage:
    """Assemble config and manifest for *layers*.

    *config* is the runtime part (``User``, ``Env``, ``Cmd``...); *history* defaults
    to one entry per layer. ``created``, ``rootfs.diff_ids`` and the platform fields
    are filled in.
    """
    if history is None:
        history = [
            {"created": CREATED, "created_by": f"crid-test: layer {i}"} for i in range(len(layers))
        ]
    history = [dict(h) for h in history]
    non_empty = sum(1 for h in history if not h.get("empty_layer"))
    if non_empty != len(layers):
        raise ValueError(f"history has {non_empty} non-empty entries for {len(layers)} layers")
    config_doc: dict[str, Any] = {
        "created": CREATED,
        "author": "crid test suite",
        **platform.as_dict(),
        "config": dict(config or {}),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": history,
    }
    config_blob = Blob.json(CONFIG_MEDIA_TYPE, config_doc)
    manifest_doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": config_blob.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    if annotations:
        manifest_doc["annotations"] = dict(annotations)
    tree = merge_layers(layers)
    absent_set = frozenset(p.lstrip("/") for p in absent)
    if leftovers := sorted(p for p in absent_set if p in tree):
        raise AssertionError(f"paths meant to be absent are still in the tree: {leftovers}")
    return BuiltImage(
        repository=repository,
        tag=tag,
        platform=platform,
        manifest=Blob.json(MANIFEST_MEDIA_TYPE, manifest_doc),
        config=config_blob,
        layers=tuple(layers),
        tree=TreeFacts(MappingProxyType(dict(tree)), absent_set),
    )


def busybox_image(
    *, repository: str = "crid-test/busybox", tag: str = "latest", busybox: Path = BUSYBOX
) -> BuiltImage:
    """One layer: /bin/busybox, applet symlinks (sh, ls, cat, id...), /etc/passwd, /tmp.

    Config: ``Cmd ["sh"]`` and a default PATH.
    """
    return build_image(
        repository,
        tag,
        [busybox_layer(busybox)],
        platform=Platform("linux", busybox_arch(busybox)),
        config={"Env": [DEFAULT_PATH], "Cmd": ["sh"]},
        history=[
            {"created": CREATED, "created_by": "crid-test: ADD busybox and applet links /"},
            {"created": CREATED, "created_by": 'crid-test: CMD ["sh"]', "empty_layer": True},
        ],
    )


#: Paths the layered image's top layer removes (by whiteout or by the opaque directory).
LAYERED_ABSENT = (
    "data/remove-me.txt",
    "data/gone-dir",
    "data/gone-dir/inner.txt",
    "opaque-dir/old-a.txt",
    "opaque-dir/old-b.txt",
    "opaque-dir/sub",
    "opaque-dir/sub/old-c.txt",
    "bin/wget",
)


def layered_whiteout_image(
    *, repository: str = "crid-test/layered", tag: str = "latest", busybox: Path = BUSYBOX
) -> BuiltImage:
    """Three layers; the top one deletes files of the lower ones and makes a directory opaque.

    1. the busybox base layer;
    2. ``/data/{keep,remove-me}.txt``, ``/data/gone-dir/inner.txt`` and
       ``/opaque-dir/{old-a,old-b,sub/old-c}.txt``;
    3. whiteouts ``/data/.wh.remove-me.txt``, ``/data/.wh.gone-dir`` and
       ``/bin/.wh.wget`` (a file of layer 1), the opaque marker
       ``/opaque-dir/.wh..wh..opq``, plus new ``/opaque-dir/new.txt`` and
       ``/data/added.txt``.

    The tree keeps ``/data/keep.txt`` and the new files; every path in
    :data:`LAYERED_ABSENT` is gone.
    """
    middle = build_layer(
        [
            file("data/keep.txt", "kept from layer 2\n"),
            file("data/remove-me.txt", "deleted by layer 3\n"),
            file("data/gone-dir/inner.txt", "whole directory deleted by layer 3\n"),
            file("opaque-dir/old-a.txt", "hidden by the opaque marker\n"),
            file("opaque-dir/old-b.txt", "hidden by the opaque marker\n"),
            file("opaque-dir/sub/old-c.txt", "hidden by the opaque marker\n"),
        ]
    )
    top = build_layer(
        [
            directory("data"),
            whiteout("data/remove-me.txt"),
            whiteout("data/gone-dir"),
            file("data/added.txt", "added by layer 3\n"),
            whiteout("bin/wget"),
            directory("opaque-dir"),
            opaque("opaque-dir"),
            file("opaque-dir/new.txt", "only file left in opaque-dir\n"),
        ]
    )
    return build_image(
        repository,
        tag,
        [busybox_layer(busybox), middle, top],
        platform=Platform("linux", busybox_arch(busybox)),
        config={"Env": [DEFAULT_PATH], "Cmd": ["sh"]},
        history=[
            {"created": CREATED, "created_by": "crid-test: ADD busybox and applet links /"},
            {"created": CREATED, "created_by": "crid-test: ADD data and opaque-dir files /"},
            {"created": CREATED, "created_by": "crid-test: RUN rm and replace opaque-dir"},
        ],
        absent=LAYERED_ABSENT,
    )


#: The runtime config of :func:`user_env_image`.
USER_ENV_CONFIG: Mapping[str, Any] = MappingProxyType(
    {
        "User": "1000:1000",
        "Env": [DEFAULT_PATH, "CRID_TEST=1", "GREETING=hello world", "EMPTY="],
        "Entrypoint": ["/bin/echo", "entrypoint"],
        "Cmd": ["from-cmd", "second arg"],
        "WorkingDir": "/srv/app",
        "Labels": {
            "org.opencontainers.image.title": "crid-test-user-env",
            "io.crid.test.role": "user-env",
            "io.crid.test.spaces": "a value with spaces",
        },
        "StopSignal": "SIGTERM",
    }
)


def user_env_image(
    *, repository: str = "crid-test/user-env", tag: str = "latest", busybox: Path = BUSYBOX
) -> BuiltImage:
    """Busybox plus a layer for user ``app`` (1000:1000): config with User, Env,
    Entrypoint+Cmd, WorkingDir ``/srv/app`` (owned by 1000:1000) and Labels, and
    /etc/passwd and /etc/group that name the user."""
    app_layer = build_layer(
        [
            file("etc/passwd", _BASE_USERS + "app:x:1000:1000:app:/home/app:/bin/sh\n"),
            file("etc/group", _BASE_GROUPS + "app:x:1000:\n"),
            directory("home/app", mode=0o750, uid=1000, gid=1000),
            directory("srv/app", mode=0o755, uid=1000, gid=1000),
            file("srv/app/hello.txt", "hello from the app\n", uid=1000, gid=1000),
        ]
    )
    config = {k: (list(v) if isinstance(v, list) else v) for k, v in USER_ENV_CONFIG.items()}
    config["Labels"] = dict(USER_ENV_CONFIG["Labels"])
    return build_image(
        repository,
        tag,
        [busybox_layer(busybox), app_layer],
        platform=Platform("linux", busybox_arch(busybox)),
        config=config,
        history=[
            {"created": CREATED, "created_by": "crid-test: ADD busybox and applet links /"},
            {"created": CREATED, "created_by": "crid-test: RUN adduser app; mkdir /srv/app"},
            {"created": CREATED, "created_by": "crid-test: USER 1000:1000", "empty_layer": True},
            {
                "created": CREATED,
                "created_by": "crid-test: ENTRYPOINT/CMD/ENV/LABEL",
                "empty_layer": True,
            },
        ],
    )


def multiplatform_index(
    *, repository: str = "crid-test/multiarch", tag: str = "latest", busybox: Path = BUSYBOX
) -> BuiltIndex:
    """An OCI index for linux/amd64 and linux/arm64/v8.

    The platform of the host's busybox gets the real busybox image; the other one a
    dummy layer holding only ``/etc/crid-test-arch``, which cannot run here.
    """
    native = busybox_arch(busybox)
    images: list[BuiltImage] = []
    for arch, variant in (("amd64", None), ("arm64", "v8")):
        platform = Platform("linux", arch, variant)
        if arch == native:
            image = build_image(
                repository,
                f"{tag}-{arch}",
                [busybox_layer(busybox)],
                platform=platform,
                config={"Env": [DEFAULT_PATH], "Cmd": ["sh"]},
            )
        else:
            dummy = build_layer([file("etc/crid-test-arch", f"{arch} dummy layer\n")])
            image = build_image(
                repository,
                f"{tag}-{arch}",
                [dummy],
                platform=platform,
                config={"Env": [DEFAULT_PATH], "Cmd": ["/bin/true"]},
            )
        images.append(image)
    index_doc = {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [
            image.manifest.descriptor(platform=image.platform.as_dict()) for image in images
        ],
    }
    return BuiltIndex(repository, tag, Blob.json(INDEX_MEDIA_TYPE, index_doc), tuple(images))
