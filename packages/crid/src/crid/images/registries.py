"""registries.conf as last read, re-read only when one of its files changed.

CreateContainer resolves a short image name (``busybox``) against the search registries
and aliases; parsing the TOML files again for every create cost more than the lookup
itself. Files are compared by inode, size and modification time, so an edit (or a
drop-in added or removed) is seen by the next call, as before, without a restart.
"""

from __future__ import annotations

import threading
from pathlib import Path

from crid.config import ImageConfig
from crid.images.pull import load_registries
from ociimage.registries import RegistriesConfig

__all__ = ["RegistriesCache"]

_Stamp = tuple[tuple[str, int, int, int] | tuple[str], ...]


def _file_stamp(path: Path) -> tuple[str, int, int, int] | tuple[str]:
    try:
        st = path.stat()
    except OSError:
        return (str(path),)
    return (str(path), st.st_ino, st.st_size, st.st_mtime_ns)


def _stamp(config: ImageConfig) -> _Stamp:
    """What identifies the files ``load_registries`` reads for ``config``."""
    stamps = [_file_stamp(Path(config.registries_conf))]
    dropins = Path(config.registries_conf_dir)
    stamps.append(_file_stamp(dropins))
    if dropins.is_dir():
        stamps += [_file_stamp(path) for path in sorted(dropins.glob("*.conf"))]
    return tuple(stamps)


class RegistriesCache:
    """The parsed registries.conf (and drop-ins) of one ``[crid.image]`` section."""

    def __init__(self, config: ImageConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._stamp: _Stamp | None = None
        self._value: RegistriesConfig | None = None

    def get(self) -> RegistriesConfig:
        """The current configuration (blocking: a few stat calls, a parse on change)."""
        stamp = _stamp(self._config)
        with self._lock:
            if self._value is not None and stamp == self._stamp:
                return self._value
        value = load_registries(self._config)
        with self._lock:
            self._stamp, self._value = stamp, value
        return value
