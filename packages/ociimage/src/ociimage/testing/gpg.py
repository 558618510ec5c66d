"""OpenPGP ("simple signing") signatures for test images, made by the real tools.

:class:`GpgKeyring` generates passphrase-less keys in a private GnuPG home, exports
them (binary or ASCII-armoured, as policy.json's ``keyPath`` takes them) and signs
manifests with ``skopeo standalone-sign``, so the signatures are exactly what
containers/image writes. :func:`store_lookaside` puts a signature where a registries.d
``lookaside`` (``file://`` URL) serves it. Needs ``gpg`` and ``skopeo``.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GpgKeyring", "store_lookaside"]

_TIMEOUT = 60.0


@dataclass(frozen=True)
class GpgKeyring:
    """A GnuPG home with signing keys named by their e-mail address."""

    home: Path

    @classmethod
    def create(cls, home: Path, *emails: str) -> GpgKeyring:
        """A new home at ``home`` holding one ed25519 signing key per address."""
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        keyring = cls(home)
        for email in emails:
            keyring.gpg("--quick-gen-key", f"crid test <{email}>", "ed25519", "sign", "never")
        return keyring

    def _env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.home),
            "GNUPGHOME": str(self.home),
            "LC_ALL": "C",
        }

    def gpg(self, *args: str, data: bytes | None = None) -> bytes:
        """Run ``gpg`` in batch mode on this home; its stdout."""
        proc = subprocess.run(
            ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", *args],
            input=data,
            capture_output=True,
            check=True,
            timeout=_TIMEOUT,
            env=self._env(),
        )
        return proc.stdout

    def fingerprint(self, email: str) -> str:
        """The fingerprint of ``email``'s key."""
        for line in self.gpg("--with-colons", "--list-keys", email).decode().splitlines():
            if line.startswith("fpr:"):
                return line.split(":")[9]
        raise KeyError(f"no key for {email}")

    def export(self, email: str, *, armor: bool = False) -> bytes:
        """``email``'s public key, binary or ASCII-armoured."""
        return self.gpg(*(["--armor"] if armor else []), "--export", email)

    def sign_manifest(self, manifest: bytes, reference: str, email: str) -> bytes:
        """A signature by ``email`` claiming ``manifest`` (its digest) is ``reference``,
        written by ``skopeo standalone-sign``."""
        manifest_file = self.home / "manifest-to-sign.json"
        output = self.home / "signature.out"
        manifest_file.write_bytes(manifest)
        output.unlink(missing_ok=True)
        subprocess.run(
            [
                "skopeo",
                "standalone-sign",
                "--output",
                str(output),
                str(manifest_file),
                reference,
                self.fingerprint(email),
            ],
            capture_output=True,
            check=True,
            timeout=_TIMEOUT,
            env=self._env(),
        )
        return output.read_bytes()

    def close(self) -> None:
        """Stop the gpg-agent the home started (best effort)."""
        subprocess.run(
            ["gpgconf", "--homedir", str(self.home), "--kill", "all"],
            capture_output=True,
            check=False,
            timeout=_TIMEOUT,
            env=self._env(),
        )


def store_lookaside(lookaside: Path, repository: str, digest: str, n: int, blob: bytes) -> Path:
    """Store ``blob`` as signature ``n`` (from 1) of ``digest`` in ``repository`` (its
    path without the registry host) under a ``file://`` lookaside rooted at ``lookaside``."""
    algorithm, _, encoded = digest.partition(":")
    target = lookaside / f"{repository}@{algorithm}={encoded}" / f"signature-{n}"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(blob)
    return target
