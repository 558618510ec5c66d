"""A streaming tar reader whose memory stays bounded whatever the archive holds.

Why not :mod:`tarfile`: in stream mode it keeps every member in ``TarFile.members``
for the whole archive, reads PAX and GNU long-name payloads whole whatever size their
header claims, accumulates global PAX records without end, and hands sparse files out
with their holes expanded into zeros. This reader holds one entry at a time, refuses
metadata payloads above ``max_header_bytes`` *before* reading them, and reports sparse
files as their data segments so the caller can keep holes as holes.

Formats read: v7, POSIX ustar, PAX (``x``, ``g``), GNU (long names ``L``/``K``, old
sparse ``S``) and GNU's PAX sparse formats 0.0, 0.1 and 1.0.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BufferedIOBase

from ocistore.errors import LayerError, LayerLimitError

__all__ = ["TarEntry", "TarReader"]

BLOCK = 512
_ZERO = bytes(BLOCK)
_POSIX_MAGIC = b"ustar\x0000"
_GNU_MAGIC = b"ustar  \x00"

REG, AREG, CONT = b"0", b"\0", b"7"
LNK, SYM, CHR, BLK, DIR, FIFO = b"1", b"2", b"3", b"4", b"5", b"6"
_PAX, _PAX_GLOBAL, _PAX_SOLARIS = b"x", b"g", b"X"
_LONGNAME, _LONGLINK, _GNU_SPARSE = b"L", b"K", b"S"
_META = (_PAX, _PAX_GLOBAL, _PAX_SOLARIS, _LONGNAME, _LONGLINK)
_REGULAR = (REG, AREG, CONT, _GNU_SPARSE)
# Entry types whose size field means nothing: no data follows their header.
_NO_DATA = (LNK, SYM, CHR, BLK, DIR, FIFO)


def _corrupt(why: str, offset: int) -> LayerError:
    return LayerError(f"corrupt layer stream: {why} (tar header at byte {offset})")


@dataclass(slots=True)
class TarEntry:
    """One archive member, its metadata already merged from PAX and GNU headers.

    ``size`` is how many data bytes follow in the archive; ``realsize`` the file's
    apparent size. For a sparse file ``sparse`` lists (offset, length) pairs of its
    data segments, flattened; everything else in ``[0, realsize)`` is a hole.
    """

    name: str
    type: bytes
    mode: int
    uid: int
    gid: int
    mtime: float
    size: int
    linkname: str
    devmajor: int
    devminor: int
    pax_headers: dict[str, str] = field(default_factory=dict)
    realsize: int = 0
    sparse: array[int] | None = None

    def isreg(self) -> bool:
        return self.type in _REGULAR

    def isdir(self) -> bool:
        return self.type == DIR

    def issym(self) -> bool:
        return self.type == SYM

    def islnk(self) -> bool:
        return self.type == LNK

    def ischr(self) -> bool:
        return self.type == CHR

    def isblk(self) -> bool:
        return self.type == BLK

    def isfifo(self) -> bool:
        return self.type == FIFO


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _cstr(raw: bytes) -> bytes:
    return raw.split(b"\0", 1)[0]


def _number(raw: bytes, what: str, offset: int) -> int:
    """A header number: NUL/space-terminated octal, or GNU base-256 (0x80 / 0xff lead byte)."""
    if raw and raw[0] in (0x80, 0xFF):
        value = int.from_bytes(raw[1:], "big")
        if raw[0] == 0xFF:
            value -= 1 << (8 * (len(raw) - 1))
        return value
    text = _cstr(raw).strip(b" ")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise _corrupt(f"{what} field {raw!r} is not a number", offset) from None


def _checksum_ok(block: bytes, offset: int) -> bool:
    stored = _number(block[148:156], "checksum", offset)
    unsigned = sum(block) - sum(block[148:156]) + 256
    if stored == unsigned:
        return True
    signed = sum(b - 256 if b > 127 else b for b in block) + 256
    signed -= sum(b - 256 if b > 127 else b for b in block[148:156])
    return stored == signed


def _pax_records(payload: bytes, offset: int) -> Iterator[tuple[str, str]]:
    """``"<len> <key>=<value>\\n"`` records, keys and values decoded losslessly."""
    pos = 0
    end = len(payload)
    while pos < end and payload[pos] != 0:
        space = payload.find(b" ", pos, pos + 24)
        if space < 0:
            raise _corrupt("PAX record without a length", offset)
        try:
            length = int(payload[pos:space])
        except ValueError:
            raise _corrupt("PAX record length is not a number", offset) from None
        record = payload[space + 1 : pos + length]
        if length <= space - pos or pos + length > end or not record.endswith(b"\n"):
            raise _corrupt("PAX record overruns its header", offset)
        key, eq, value = record[:-1].partition(b"=")
        if not eq:
            raise _corrupt("PAX record without '='", offset)
        yield _text(key), _text(value)
        pos += length


class TarReader:
    """Yields :class:`TarEntry` values from a buffered stream; read each one's data
    with :meth:`readinto` before asking for the next (unread data is skipped).

    ``max_header_bytes`` bounds every metadata payload (one PAX header, one GNU long
    name, one sparse map) and their sum for one entry, and the global PAX records.
    """

    def __init__(self, stream: BufferedIOBase, *, max_header_bytes: int) -> None:
        self._stream = stream
        self._max_header = max_header_bytes
        self._global: dict[str, str] = {}
        self._global_bytes = 0
        self._offset = 0  # bytes consumed from the stream
        self._left = 0  # data bytes of the current entry not yet read
        self._pad = 0  # padding after the current entry's data

    # -- raw reading ----------------------------------------------------------------

    def _read(self, n: int) -> bytes:
        data = self._stream.read(n)
        if len(data) != n:
            raise _corrupt("stream ends inside an entry", self._offset)
        self._offset += n
        return data

    def _skip(self, n: int) -> None:
        while n > 0:
            data = self._stream.read(min(n, 1 << 16))
            if not data:
                raise _corrupt("stream ends inside an entry", self._offset)
            self._offset += len(data)
            n -= len(data)

    def readinto(self, view: memoryview) -> int:
        """Read the current entry's data into ``view``; 0 once all of it was read."""
        n = min(len(view), self._left)
        if n == 0:
            return 0
        got = self._stream.readinto(view[:n])
        if got != n:
            raise _corrupt("stream ends inside an entry's data", self._offset)
        self._offset += n
        self._left -= n
        return n

    def _metadata(self, size: int, what: str, spent: int) -> bytes:
        if size > self._max_header or spent + size > self._max_header:
            raise LayerLimitError(
                f"{what} of {size} bytes (entry metadata {spent + size} bytes so far) exceeds "
                f"the {self._max_header}-byte limit (UnpackLimits.max_header_bytes)"
            )
        data = self._read(size)
        self._skip(-size % BLOCK)
        return data

    # -- entries ----------------------------------------------------------------------

    def __iter__(self) -> Iterator[TarEntry]:
        while (entry := self.next()) is not None:
            yield entry

    def next(self) -> TarEntry | None:
        """The next entry; None at the end-of-archive marker or where the stream ends
        between entries (as GNU tar and Go's archive/tar accept), but not at byte 0."""
        self._skip(self._left + self._pad)
        self._left = self._pad = 0
        pax: dict[str, str] = {}
        sparse_pairs: list[str] = []
        longname = longlink = None
        spent = 0
        while True:
            start = self._offset
            block = self._stream.read(BLOCK)
            if not block and start == 0:
                raise _corrupt("the stream is empty, not even an end-of-archive marker", 0)
            if not block or block == _ZERO:
                return None
            if len(block) != BLOCK:
                raise _corrupt("stream ends inside a header", start)
            self._offset += BLOCK
            if not _checksum_ok(block, start):
                raise _corrupt("bad header checksum", start)
            kind = block[156:157]
            if kind not in _META:
                break
            size = _number(block[124:136], "size", start)
            if size < 0:
                raise _corrupt("negative size", start)
            if kind == _PAX_GLOBAL:
                payload = self._metadata(size, "global PAX header", self._global_bytes)
                self._global_bytes += size
                self._global.update(_pax_records(payload, start))
                continue
            if kind in (_PAX, _PAX_SOLARIS):
                payload = self._metadata(size, "PAX extended header", spent)
                for key, value in _pax_records(payload, start):
                    if key in ("GNU.sparse.offset", "GNU.sparse.numbytes"):
                        sparse_pairs.append(value)
                    else:
                        pax[key] = value
            elif kind == _LONGNAME:
                longname = _cstr(self._metadata(size, "GNU long name", spent))
            else:
                longlink = _cstr(self._metadata(size, "GNU long link name", spent))
            spent += size
        return self._entry(block, start, pax, sparse_pairs, longname, longlink, spent)

    def _entry(
        self,
        block: bytes,
        start: int,
        pax: dict[str, str],
        sparse_pairs: list[str],
        longname: bytes | None,
        longlink: bytes | None,
        spent: int,
    ) -> TarEntry:
        kind = block[156:157]
        magic = block[257:265]
        name = _cstr(block[0:100])
        if magic == _POSIX_MAGIC and block[345] and kind != _GNU_SPARSE:
            name = _cstr(block[345:500]) + b"/" + name
        headers = {**self._global, **pax} if self._global else pax
        size = _number(block[124:136], "size", start)
        entry = TarEntry(
            name=_text(longname if longname is not None else name),
            type=kind,
            mode=_number(block[100:108], "mode", start),
            uid=_number(block[108:116], "uid", start),
            gid=_number(block[116:124], "gid", start),
            mtime=_number(block[136:148], "mtime", start),
            size=size,
            linkname=_text(longlink if longlink is not None else _cstr(block[157:257])),
            devmajor=_number(block[329:337], "devmajor", start),
            devminor=_number(block[337:345], "devminor", start),
            pax_headers=headers,
        )
        if headers:
            self._apply_pax(entry, headers, start)
        if kind == AREG and entry.name.endswith("/"):
            entry.type = DIR
        if entry.size < 0:
            raise _corrupt("negative size", start)
        entry.realsize = entry.size
        if kind == _GNU_SPARSE:
            self._old_gnu_sparse(entry, block, start, spent)
        elif "GNU.sparse.major" in headers or sparse_pairs or "GNU.sparse.map" in headers:
            self._pax_sparse(entry, headers, sparse_pairs, start, spent)
        if entry.type in _NO_DATA:
            self._left = 0
        else:
            self._left = entry.size
            self._pad = -entry.size % BLOCK
        if entry.sparse is not None:
            _check_sparse(entry, start)
        return entry

    @staticmethod
    def _apply_pax(entry: TarEntry, headers: dict[str, str], start: int) -> None:
        try:
            if "path" in headers:
                entry.name = headers["path"]
            if "linkpath" in headers:
                entry.linkname = headers["linkpath"]
            if "size" in headers:
                entry.size = int(headers["size"])
            if "uid" in headers:
                entry.uid = int(headers["uid"])
            if "gid" in headers:
                entry.gid = int(headers["gid"])
            if "mtime" in headers:
                entry.mtime = float(headers["mtime"])
                if not math.isfinite(entry.mtime):
                    raise ValueError(entry.mtime)
        except ValueError:
            raise _corrupt("PAX record with a malformed number", start) from None

    def _old_gnu_sparse(self, entry: TarEntry, block: bytes, start: int, spent: int) -> None:
        """Old GNU sparse: four (offset, length) slots in the header, 21 per extension block."""
        pairs: array[int] = array("q")
        for i in range(4):
            at = 386 + 24 * i
            if block[at]:
                pairs.append(_number(block[at : at + 12], "sparse offset", start))
                pairs.append(_number(block[at + 12 : at + 24], "sparse length", start))
        extended = block[482]
        while extended:
            spent += BLOCK
            if spent > self._max_header:
                raise LayerLimitError(
                    f"GNU sparse map of {entry.name!r} exceeds the {self._max_header}-byte "
                    "limit (UnpackLimits.max_header_bytes)"
                )
            ext = self._read(BLOCK)
            for i in range(21):
                at = 24 * i
                if ext[at]:
                    pairs.append(_number(ext[at : at + 12], "sparse offset", start))
                    pairs.append(_number(ext[at + 12 : at + 24], "sparse length", start))
            extended = ext[504]
        entry.type = REG
        entry.realsize = _number(block[483:495], "sparse real size", start)
        entry.sparse = pairs

    def _pax_sparse(
        self,
        entry: TarEntry,
        headers: dict[str, str],
        sparse_pairs: list[str],
        start: int,
        spent: int,
    ) -> None:
        """GNU's PAX sparse formats: 0.0 (repeated records), 0.1 (one map), 1.0 (map in data)."""
        pairs: array[int] = array("q")
        try:
            if headers.get("GNU.sparse.major") == "1":
                entry.realsize = int(headers["GNU.sparse.realsize"])
                self._sparse_map_10(entry, pairs, start, spent)
            else:
                entry.realsize = int(headers["GNU.sparse.size"])
                raw = headers["GNU.sparse.map"].split(",") if sparse_pairs == [] else sparse_pairs
                if len(raw) % 2:
                    raise _corrupt("sparse map with an odd count of numbers", start)
                pairs.extend(int(v) for v in raw)
        except (KeyError, ValueError):
            raise _corrupt("malformed GNU sparse records", start) from None
        if "GNU.sparse.name" in headers:
            entry.name = headers["GNU.sparse.name"]
        entry.sparse = pairs

    def _sparse_map_10(self, entry: TarEntry, pairs: array[int], start: int, spent: int) -> None:
        """Format 1.0: decimal numbers, one a line, in whole blocks before the data."""
        need = -1  # numbers still wanted; the first one says how many pairs follow
        tail = b""
        used = 0
        while need != 0:
            used += BLOCK
            if used > entry.size or spent + used > self._max_header:
                raise LayerLimitError(
                    f"GNU sparse map of {entry.name!r} exceeds its entry or the "
                    f"{self._max_header}-byte limit (UnpackLimits.max_header_bytes)"
                )
            *lines, tail = (tail + self._read(BLOCK)).split(b"\n")
            for line in lines:
                value = int(line)
                if need < 0:
                    if value < 0:
                        raise ValueError(line)
                    need = 2 * value
                else:
                    pairs.append(value)
                    need -= 1
                if need == 0:
                    break
            if need != 0 and len(tail) > 20:
                raise _corrupt("sparse map number too long", start)
        entry.size -= used


def _check_sparse(entry: TarEntry, start: int) -> None:
    """Segments must be in order, inside the file, and add up to the stored data."""
    pairs = entry.sparse
    assert pairs is not None
    end = 0
    total = 0
    for i in range(0, len(pairs), 2):
        off, length = pairs[i], pairs[i + 1]
        if off < end or length < 0 or off + length > entry.realsize:
            raise _corrupt(f"sparse map of {entry.name!r} is out of order or out of bounds", start)
        end = off + length
        total += length
    if total != entry.size or entry.realsize < 0:
        raise _corrupt(
            f"sparse map of {entry.name!r} covers {total} bytes, the entry stores {entry.size}",
            start,
        )
