"""Hostile layer tar streams built byte by byte: sparse files, huge headers, deep paths.

``tarfile`` cannot write GNU sparse entries or lie about header sizes, so these
helpers write raw 512-byte blocks. Every stream is small to build and small on disk
(gzip shrinks the repetitive parts); what it claims is what makes it hostile.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Sequence

BLOCK = 512
POSIX = b"ustar\x0000"
GNU = b"ustar  \x00"
MTIME = 1_700_000_000


def _octal(value: int, width: int) -> bytes:
    """A NUL-terminated octal field, or GNU base-256 when it does not fit."""
    text = b"%0*o\0" % (width - 1, value)
    if len(text) <= width:
        return text
    return b"\x80" + value.to_bytes(width - 1, "big")


def header(
    name: str | bytes,
    kind: bytes = b"0",
    size: int = 0,
    *,
    magic: bytes = POSIX,
    mode: int = 0o644,
    linkname: bytes = b"",
    extra: Iterable[tuple[int, bytes]] = (),
) -> bytes:
    """One header block; ``extra`` writes raw bytes at offsets (GNU sparse fields)."""
    raw = name.encode() if isinstance(name, str) else name
    block = bytearray(BLOCK)
    block[0 : min(100, len(raw))] = raw[:100]
    block[100:108] = _octal(mode, 8)
    block[108:116] = _octal(0, 8)
    block[116:124] = _octal(0, 8)
    block[124:136] = _octal(size, 12)
    block[136:148] = _octal(MTIME, 12)
    block[156:157] = kind
    block[157 : 157 + len(linkname[:100])] = linkname[:100]
    block[257:265] = magic
    for offset, data in extra:
        block[offset : offset + len(data)] = data
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


END = bytes(2 * BLOCK)


def pax_record(key: str, value: str | bytes) -> bytes:
    body = b" " + key.encode() + b"=" + (value.encode() if isinstance(value, str) else value)
    body += b"\n"
    length = len(body) + 1
    while len(str(length).encode()) + len(body) != length:
        length += 1
    return str(length).encode() + body


def pax(records: Iterable[tuple[str, str | bytes]], kind: bytes = b"x") -> bytes:
    payload = b"".join(pax_record(k, v) for k, v in records)
    return header("PaxHeader", kind, len(payload)) + pad(payload)


def regular(name: str, data: bytes, mode: int = 0o644) -> bytes:
    """A regular file; a name over 100 bytes goes into a PAX ``path`` record."""
    long = pax([("path", name)]) if len(name.encode()) > 100 else b""
    return long + header(name, b"0", len(data), mode=mode) + pad(data)


def directory(name: str) -> bytes:
    return header(name.rstrip("/") + "/", b"5", mode=0o755)


def gz(tar: bytes | Iterable[bytes]) -> bytes:
    """Gzip a stream given whole or in chunks (big hostile streams are never held whole)."""
    if isinstance(tar, bytes):
        return gzip.compress(tar, compresslevel=9, mtime=0)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0) as fh:
        for chunk in tar:
            fh.write(chunk)
    return out.getvalue()


# -- sparse files ------------------------------------------------------------------------

Segments = Sequence[tuple[int, bytes]]


def sparse_gnu_old(name: str, realsize: int, segments: Segments) -> bytes:
    """An old-GNU ``S`` entry: four map slots in the header, 21 per extension block."""
    pairs = [(off, len(data)) for off, data in segments]
    data = b"".join(d for _, d in segments)

    def slot(off: int, n: int) -> bytes:
        return _octal(off, 12) + _octal(n, 12)

    first, rest = pairs[:4], pairs[4:]
    extra = [(386 + 24 * i, slot(*p)) for i, p in enumerate(first)]
    extra += [(482, b"\x01" if rest else b"\0"), (483, _octal(realsize, 12))]
    out = header(name, b"S", len(data), magic=GNU, extra=extra)
    while rest:
        chunk, rest = rest[:21], rest[21:]
        ext = bytearray(BLOCK)
        for i, p in enumerate(chunk):
            ext[24 * i : 24 * i + 24] = slot(*p)
        ext[504] = 1 if rest else 0
        out += bytes(ext)
    return out + pad(data)


def sparse_pax_00(name: str, realsize: int, segments: Segments) -> bytes:
    records: list[tuple[str, str | bytes]] = [("GNU.sparse.size", str(realsize))]
    records.append(("GNU.sparse.numblocks", str(len(segments))))
    for off, data in segments:
        records += [("GNU.sparse.offset", str(off)), ("GNU.sparse.numbytes", str(len(data)))]
    data = b"".join(d for _, d in segments)
    return pax(records) + header(name, b"0", len(data)) + pad(data)


def sparse_pax_01(name: str, realsize: int, segments: Segments) -> bytes:
    flat = ",".join(f"{off},{len(data)}" for off, data in segments)
    records: list[tuple[str, str | bytes]] = [
        ("GNU.sparse.size", str(realsize)),
        ("GNU.sparse.numblocks", str(len(segments))),
        ("GNU.sparse.name", name),
        ("GNU.sparse.map", flat),
    ]
    data = b"".join(d for _, d in segments)
    return pax(records) + header("GNUSparseFile.0/" + name, b"0", len(data)) + pad(data)


def sparse_pax_10(name: str, realsize: int, segments: Segments) -> bytes:
    lines = [str(len(segments))] + [f"{off}\n{len(data)}" for off, data in segments]
    sparse_map = pad(("\n".join(lines) + "\n").encode())
    data = b"".join(d for _, d in segments)
    records: list[tuple[str, str | bytes]] = [
        ("GNU.sparse.major", "1"),
        ("GNU.sparse.minor", "0"),
        ("GNU.sparse.name", name),
        ("GNU.sparse.realsize", str(realsize)),
    ]
    stored = sparse_map + data
    return pax(records) + header("GNUSparseFile.0/" + name, b"0", len(stored)) + pad(stored)


SPARSE_FORMATS = {
    "gnu-old": sparse_gnu_old,
    "pax-0.0": sparse_pax_00,
    "pax-0.1": sparse_pax_01,
    "pax-1.0": sparse_pax_10,
}
