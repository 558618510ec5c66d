"""What a runtime handler can do, as StatusResponse advertises it, and why.

* ``recursive_read_only_mounts``: the runtime lists ``rro`` among the mount options of
  ``<runtime> features`` and the kernel has mount_setattr(2) (Linux 5.12), the recipe
  the CRI's api.proto gives for runc-compatible runtimes.
* ``user_namespaces``: always false. The CRI means pod user namespaces *with* idmapped
  mounts; crid creates no pod user namespaces, and runc 1.1 has no idmapped mounts
  (``linux.mountExtensions.idmap`` is absent from its features).

A runtime's answer is read once per binary and kept; a failed read is not kept, so a
later Status asks again (and until then the handler advertises nothing).
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from crid.oci._exec import run
from ocispec.errors import SpecError
from ocispec.runtime import Features, parse_features

__all__ = ["HandlerFeatures", "RuntimeFeatureCache", "features_of", "kernel_has_mount_setattr"]

_log = logging.getLogger(__name__)

#: mount_setattr(2): the same number on every architecture (the generic syscall table).
_SYS_MOUNT_SETATTR = 442


@dataclass(frozen=True, kw_only=True)
class HandlerFeatures:
    """The CRI RuntimeHandlerFeatures of one handler, with the reason for each answer."""

    recursive_read_only_mounts: bool = False
    user_namespaces: bool = False
    reasons: tuple[str, ...] = ()


@functools.cache
def kernel_has_mount_setattr() -> bool:
    """Whether the kernel implements mount_setattr(2) (and no filter forbids it).

    Called with a bad descriptor: a kernel that has it answers EBADF (or EINVAL),
    one that has not answers ENOSYS; EPERM means a seccomp filter blocks it.
    """
    libc = ctypes.CDLL(None, use_errno=True)  # the loaded C library, no ldconfig run
    ctypes.set_errno(0)
    result = libc.syscall(
        ctypes.c_long(_SYS_MOUNT_SETATTR),
        ctypes.c_int(-1),
        ctypes.c_char_p(b""),
        ctypes.c_uint(0),
        ctypes.c_void_p(None),
        ctypes.c_size_t(0),
    )
    if result == 0:
        return True
    return ctypes.get_errno() not in (errno.ENOSYS, errno.EPERM)


def features_of(runtime: Features | None, *, mount_setattr: bool) -> HandlerFeatures:
    """The handler features a runtime's features document (None: unreadable) allows."""
    reasons: list[str] = []
    if runtime is None:
        reasons.append("runtime features unreadable: no recursive read-only mounts")
        rro = False
    elif not runtime.supports_mount_option("rro", unknown=False):
        reasons.append("runtime does not list the 'rro' mount option")
        rro = False
    elif not mount_setattr:
        reasons.append("kernel lacks mount_setattr(2) (Linux < 5.12)")
        rro = False
    else:
        reasons.append("runtime lists 'rro' and the kernel has mount_setattr(2)")
        rro = True
    idmap = runtime is not None and runtime.supports_idmapped_mounts(unknown=False)
    reasons.append(
        "user namespaces: crid creates no pod user namespaces"
        + ("" if idmap else " and the runtime has no idmapped mounts")
    )
    return HandlerFeatures(
        recursive_read_only_mounts=rro, user_namespaces=False, reasons=tuple(reasons)
    )


async def _read(binary: Path, timeout: float) -> Features | None:
    try:
        done = await run([str(binary), "features"], timeout=timeout)
    except (OSError, TimeoutError) as err:
        _log.warning("runtime features: cannot run %s features: %s", binary, err)
        return None
    if done.returncode != 0:
        _log.warning(
            "runtime features: %s features failed (exit %d): %s",
            binary,
            done.returncode,
            done.stderr.decode(errors="replace").strip(),
        )
        return None
    try:
        return parse_features(done.stdout)
    except SpecError as err:
        _log.warning("runtime features: %s printed no features document: %s", binary, err)
        return None


class RuntimeFeatureCache:
    """The handler features of each runtime binary, asked for once."""

    def __init__(self, *, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._known: dict[Path, HandlerFeatures] = {}
        self._lock = asyncio.Lock()

    async def get(self, binary: Path) -> HandlerFeatures:
        """The features of the runtime at ``binary`` (its ``features`` read on first use)."""
        if (known := self._known.get(binary)) is not None:
            return known
        async with self._lock:
            if (known := self._known.get(binary)) is not None:
                return known
            runtime = await _read(binary, self.timeout)
            setattr_ok = await asyncio.to_thread(kernel_has_mount_setattr)
            found = features_of(runtime, mount_setattr=setattr_ok)
            if runtime is not None:
                self._known[binary] = found
            return found
