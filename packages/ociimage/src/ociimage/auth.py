"""Registry credentials: containers' ``auth.json``, Docker's ``config.json``, and the caller's.

Files are searched in containers-auth.json(5) order: ``$REGISTRY_AUTH_FILE`` alone when
set, else ``$XDG_RUNTIME_DIR/containers/auth.json`` (``/run/containers/<uid>/auth.json``),
``$XDG_CONFIG_HOME/containers/auth.json``, ``~/.docker/config.json``. In each, the most
specific key wins: ``host/ns/repo``, then ``host/ns``, then ``host``; Docker's legacy
URL keys (``https://index.docker.io/v1/``) count as their host.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ociimage.errors import ConfigFileError

__all__ = [
    "AuthFile",
    "CredentialStore",
    "Credentials",
    "default_auth_files",
]

_DOCKER_HUB_KEYS = {"index.docker.io", "registry-1.docker.io", "docker.io"}


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """What to authenticate to a registry with.

    ``identity_token`` is an OAuth2 refresh token (sent to the token realm by POST);
    ``registry_token`` is a bearer token used as is. All empty means anonymous.
    """

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    registry_token: str = field(default="", repr=False)

    @property
    def anonymous(self) -> bool:
        """Whether there is nothing to authenticate with."""
        return not (self.username or self.password or self.identity_token or self.registry_token)

    @classmethod
    def from_auth(cls, auth: str, *, identity_token: str = "") -> Credentials:
        """Decode Docker's ``auth`` field: base64 of ``user:password``."""
        try:
            decoded = base64.b64decode(auth, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as err:
            raise ConfigFileError("auth value is not base64 of user:password") from err
        user, sep, password = decoded.partition(":")
        if not sep:
            raise ConfigFileError("auth value does not decode to user:password")
        return cls(username=user, password=password, identity_token=identity_token)

    @classmethod
    def from_cri(
        cls,
        *,
        username: str = "",
        password: str = "",
        auth: str = "",
        identity_token: str = "",
        registry_token: str = "",
    ) -> Credentials:
        """From CRI's ``AuthConfig``; ``auth`` fills username/password when they are empty."""
        if auth and not (username or password):
            decoded = cls.from_auth(auth)
            username, password = decoded.username, decoded.password
        return cls(
            username=username,
            password=password,
            identity_token=identity_token,
            registry_token=registry_token,
        )


def _normalize_key(key: str) -> str:
    """``https://index.docker.io/v1/`` → ``docker.io``; ``host/ns`` stays as is."""
    if "://" in key:
        key = key.split("://", 1)[1].split("/", 1)[0]
    key = key.rstrip("/")
    host, sep, rest = key.partition("/")
    if host in _DOCKER_HUB_KEYS:
        host = "docker.io"
    return host + sep + rest


@dataclass(frozen=True, kw_only=True)
class AuthFile:
    """One parsed auth file: normalised key → credentials."""

    path: str | None = None
    entries: Mapping[str, Credentials] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, path: str | None = None) -> AuthFile:
        """Parse auth.json / config.json text; entries with nothing usable are skipped."""
        try:
            doc = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as err:
            raise ConfigFileError(f"not valid JSON: {err}", path) from err
        if not isinstance(doc, dict):
            raise ConfigFileError("an auth file must hold a JSON object", path)
        auths = doc.get("auths", {})
        if not isinstance(auths, dict):
            raise ConfigFileError('"auths" must be an object', path)
        entries: dict[str, Credentials] = {}
        for key, value in auths.items():
            if not isinstance(value, dict):
                raise ConfigFileError(f"auths[{key!r}] must be an object", path)
            auth = value.get("auth", "")
            token = value.get("identitytoken", "")
            if not isinstance(auth, str) or not isinstance(token, str):
                raise ConfigFileError(f"auths[{key!r}] has a non-string auth/identitytoken", path)
            if auth:
                try:
                    creds = Credentials.from_auth(auth, identity_token=token)
                except ConfigFileError as err:
                    raise ConfigFileError(f"auths[{key!r}]: {err}", path) from err
            elif token:
                creds = Credentials(identity_token=token)
            else:
                continue  # e.g. an entry handled by a credential helper
            entries[_normalize_key(key)] = creds
        return cls(path=path, entries=entries)

    @classmethod
    def load(cls, path: str | Path) -> AuthFile | None:
        """Read ``path``; None when it does not exist."""
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise ConfigFileError(f"cannot read: {err}", str(path)) from err
        return cls.parse(text, str(path))

    def lookup(self, name: str) -> Credentials | None:
        """Credentials for repository ``host/path``: the most specific key that matches."""
        candidate = _normalize_key(name)
        while True:
            creds = self.entries.get(candidate)
            if creds is not None:
                return creds
            if "/" not in candidate:
                return None
            candidate = candidate.rsplit("/", 1)[0]


def default_auth_files(env: Mapping[str, str] | None = None) -> list[Path]:
    """The auth files to search, in order (see the module docs)."""
    env = os.environ if env is None else env
    if env.get("REGISTRY_AUTH_FILE"):
        return [Path(env["REGISTRY_AUTH_FILE"])]
    runtime = env.get("XDG_RUNTIME_DIR") or f"/run/containers/{os.getuid()}"
    runtime_path = Path(runtime) / "auth.json"
    if env.get("XDG_RUNTIME_DIR"):
        runtime_path = Path(runtime) / "containers" / "auth.json"
    home = Path(env.get("HOME") or Path.home())
    config_home = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    return [
        runtime_path,
        config_home / "containers" / "auth.json",
        home / ".docker" / "config.json",
    ]


class CredentialStore:
    """Finds credentials for a repository: explicit ones first, then the auth files.

    ``explicit`` maps a registry host (or ``host/ns``) to credentials, as a caller such as
    crid passes them; ``files`` defaults to :func:`default_auth_files`.
    """

    def __init__(
        self,
        files: Sequence[str | Path] | None = None,
        *,
        explicit: Mapping[str, Credentials] | None = None,
    ) -> None:
        paths = default_auth_files() if files is None else [Path(f) for f in files]
        self._files = [f for f in (AuthFile.load(p) for p in paths) if f is not None]
        self._explicit = AuthFile(
            entries={_normalize_key(k): v for k, v in (explicit or {}).items()}
        )

    def lookup(self, name: str) -> Credentials:
        """Credentials for repository ``host/path`` (anonymous when none are known)."""
        for source in (self._explicit, *self._files):
            creds = source.lookup(name)
            if creds is not None:
                return creds
        return Credentials()
