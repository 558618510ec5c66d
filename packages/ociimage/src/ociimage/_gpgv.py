"""The one wrapper around Debian's ``gpgv``: verify an inline-signed OpenPGP message.

The trusted keys (binary or ASCII-armored) are written to a temporary keyring; ``gpgv``
runs with an explicit environment and a timeout, and is killed and reaped if it
overruns or the caller is cancelled. The signed content is returned only when gpgv
reports a valid signature (``VALIDSIG``) and exits 0.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ociimage.errors import ConfigFileError

__all__ = ["GPGV", "GpgvResult", "dearmor", "verify_inline"]

GPGV = "/usr/bin/gpgv"
_ARMOR_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
_ARMOR_END = "-----END PGP PUBLIC KEY BLOCK-----"


@dataclass(frozen=True, kw_only=True)
class GpgvResult:
    """A verified message: its content and the signing key's fingerprint."""

    content: bytes
    fingerprint: str


def dearmor(key: bytes) -> bytes:
    """Binary OpenPGP key material from ``key`` (armored blocks decoded, binary kept)."""
    text = key.decode("ascii", errors="replace")
    if _ARMOR_BEGIN not in text:
        return key
    out = b""
    for block in text.split(_ARMOR_BEGIN)[1:]:
        body = block.split(_ARMOR_END, 1)[0]
        lines = body.strip().splitlines()
        # armor headers end at the first blank line (if there are any)
        if "" in [line.strip() for line in lines]:
            lines = lines[[line.strip() for line in lines].index("") + 1 :]
        data = "".join(line.strip() for line in lines if not line.startswith("="))
        try:
            out += base64.b64decode(data, validate=True)
        except binascii.Error as err:
            raise ConfigFileError("an armored OpenPGP key is not valid base64") from err
    return out


async def verify_inline(
    message: bytes, keys: list[bytes], *, gpgv: str = GPGV, timeout: float = 30.0
) -> GpgvResult | None:
    """The content of the inline-signed ``message`` if one of ``keys`` signed it, else None."""
    with tempfile.TemporaryDirectory(prefix="ociimage-gpgv-") as tmp:
        work = Path(tmp)
        keyring = work / "trusted.gpg"
        keyring.write_bytes(b"".join(dearmor(k) for k in keys))
        signed = work / "message.sig"
        signed.write_bytes(message)
        output = work / "content"
        process = await asyncio.create_subprocess_exec(
            gpgv,
            "--homedir",
            str(work),
            "--status-fd",
            "1",
            "--keyring",
            str(keyring),
            "--output",
            str(output),
            str(signed),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C", "HOME": str(work)},
        )
        try:
            stdout, _ = await asyncio.wait_for(process.communicate(), timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        fingerprint = ""
        for line in stdout.decode(errors="replace").splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[:2] == ["[GNUPG:]", "VALIDSIG"]:
                fingerprint = fields[2]
        if process.returncode != 0 or not fingerprint or not output.exists():
            return None
        return GpgvResult(content=output.read_bytes(), fingerprint=fingerprint)
