"""Per-registry TLS from ``certs.d`` directories (containers-certs.d(5)).

``<dir>/<host[:port]>/*.crt`` are extra CAs, ``*.cert`` with the ``*.key`` of the same
stem are client certificates. The system CAs stay trusted. An insecure registry (from
registries.conf) gets a context that does not verify the server.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from pathlib import Path

from ociimage.errors import ConfigFileError

__all__ = ["DEFAULT_CERTS_DIRS", "TLSConfig"]

#: Searched in order; the first holding a directory for the host is used.
DEFAULT_CERTS_DIRS = (Path("/etc/containers/certs.d"), Path("/etc/docker/certs.d"))


class TLSConfig:
    """Builds (and caches) an :class:`ssl.SSLContext` per registry host."""

    def __init__(self, certs_dirs: Sequence[str | Path] = DEFAULT_CERTS_DIRS) -> None:
        self.certs_dirs = tuple(Path(d) for d in certs_dirs)
        self._cache: dict[tuple[str, bool], ssl.SSLContext] = {}

    def host_dir(self, host: str) -> Path | None:
        """The certs.d directory for ``host`` (``host:port`` as written in references)."""
        for base in self.certs_dirs:
            candidate = base / host
            if candidate.is_dir():
                return candidate
        return None

    def context(self, host: str, *, insecure: bool = False) -> ssl.SSLContext:
        """The TLS context to reach ``host`` with."""
        key = (host, insecure)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._build(host, insecure)
            self._cache[key] = cached
        return cached

    def _build(self, host: str, insecure: bool) -> ssl.SSLContext:
        if insecure:
            # nothing is verified: loading the system's CA store would only cost time
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx = ssl.create_default_context()
        directory = self.host_dir(host)
        if directory is None:
            return ctx
        for ca in sorted(directory.glob("*.crt")):
            try:
                ctx.load_verify_locations(cafile=str(ca))
            except (OSError, ssl.SSLError) as err:
                raise ConfigFileError(f"cannot load CA certificate: {err}", str(ca)) from err
        for cert in sorted(directory.glob("*.cert")):
            key = cert.with_suffix(".key")
            if not key.exists():
                raise ConfigFileError(f"client certificate without a key ({key.name})", str(cert))
            try:
                ctx.load_cert_chain(certfile=str(cert), keyfile=str(key))
            except (OSError, ssl.SSLError) as err:
                raise ConfigFileError(f"cannot load client certificate: {err}", str(cert)) from err
        for key in sorted(directory.glob("*.key")):
            if not key.with_suffix(".cert").exists():
                raise ConfigFileError(
                    f"client key without a certificate ({key.stem}.cert)", str(key)
                )
        return ctx
