"""A cheap fingerprint of the files a pull reads, to tell when they changed.

crid reads registries.conf, its drop-ins, the signature policy, registries.d, the auth
files and certs.d afresh whenever one of them changed, as CRI-O reads them per pull;
comparing ``stat`` results (a few microseconds each) instead of parsing every file on
every pull keeps that promise without the cost.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["Fingerprint", "fingerprint"]

#: Per path: its name and (inode, size, mtime in ns, ctime in ns), or None when missing.
Fingerprint = tuple[tuple[str, tuple[int, int, int, int] | None], ...]


def _stat(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _walk(path: Path, depth: int, out: list[tuple[str, tuple[int, int, int, int] | None]]) -> None:
    out.append((str(path), _stat(path)))
    if depth <= 0:
        return
    try:
        entries = sorted(path.iterdir())
    except OSError:
        return  # missing, or a file: its own stat is all there is
    for entry in entries:
        _walk(entry, depth - 1, out)


def fingerprint(files: Iterable[str | Path], dirs: Iterable[tuple[str | Path, int]]) -> Fingerprint:
    """The stat of each file, and of each directory with its entries ``depth`` levels
    down (a file edited in place changes its mtime; one added or removed, its dir's)."""
    out: list[tuple[str, tuple[int, int, int, int] | None]] = []
    for file in files:
        out.append((str(file), _stat(Path(file))))
    for directory, depth in dirs:
        _walk(Path(directory), depth, out)
    return tuple(out)
