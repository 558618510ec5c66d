"""A real OCI registry on 127.0.0.1 for tests: Debian's ``docker-registry``.

:class:`LocalRegistry` writes a private config (filesystem storage in a temp
directory, ``http.addr`` on a free loopback port, deletes enabled), starts
``docker-registry serve`` on it, waits until ``GET /v2/`` answers and stops it again
(SIGTERM, then SIGKILL, always reaped). It never reads the system's
``/etc/docker/registry/config.yml`` and never listens on :5000, where Debian's own
service may be running.

Optional HTTP Basic auth (``htpasswd=("user", "password")``) writes a bcrypt
htpasswd file; that needs the ``bcrypt`` package (``ociimage[testing]``). Other
auth schemes, e.g. a token realm, go in through ``auth=``: the ``auth`` section of
the registry config as a dict, written as given; subclasses may override
:meth:`LocalRegistry.auth_section` or :meth:`LocalRegistry.build_config` instead.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import httpx

__all__ = ["DOCKER_REGISTRY", "LocalRegistry", "RegistryStartError", "free_port"]

#: Where Debian's ``docker-registry`` package installs the registry.
DOCKER_REGISTRY = "/usr/bin/docker-registry"
#: The port Debian's system registry service uses; never chosen here.
SYSTEM_REGISTRY_PORT = 5000
_LOG_TAIL_BYTES = 4000

_running: weakref.WeakSet[LocalRegistry] = weakref.WeakSet()


class RegistryStartError(RuntimeError):
    """The registry process did not come up; the message ends with its log's tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on *host* that is free right now (never 5000)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        if port != SYSTEM_REGISTRY_PORT:
            return port


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def _bcrypt_htpasswd_line(user: str, password: str) -> str:
    try:
        import bcrypt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "LocalRegistry(htpasswd=...) needs the bcrypt package: install ociimage[testing]"
        ) from exc
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    return f"{user}:{hashed}\n"


def _set_parent_death_signal() -> None:  # pragma: no cover - runs in the child
    """Have the kernel SIGTERM the registry if the test process dies without stopping it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except Exception:  # noqa: S110 - best effort only
        pass


class LocalRegistry:
    """A ``docker-registry`` process serving plain HTTP on 127.0.0.1.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. All state
    (config, storage, log) lives in *workdir*; when none is given a temp directory
    is made and removed again by :meth:`stop`.
    """

    def __init__(
        self,
        *,
        binary: str | os.PathLike[str] = DOCKER_REGISTRY,
        workdir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        htpasswd: tuple[str, str] | None = None,
        auth: Mapping[str, Any] | None = None,
        extra_config: Mapping[str, Any] | None = None,
        startup_timeout: float = 20.0,
        stop_timeout: float = 5.0,
    ) -> None:
        if htpasswd is not None and auth is not None:
            raise ValueError("give either htpasswd or auth, not both")
        if port == SYSTEM_REGISTRY_PORT:
            raise ValueError("port 5000 belongs to the system docker-registry service")
        self.binary = Path(binary)
        self.credentials = htpasswd
        self._auth = dict(auth) if auth is not None else None
        self._extra_config = extra_config or {}
        self._requested_port = port
        self._given_workdir = Path(workdir) if workdir is not None else None
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._workdir: Path | None = None
        self._owns_workdir = False
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- facts ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("registry not started")
        return self._port

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the registry part of image references."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}"

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise RuntimeError("registry not started")
        return self._workdir

    @property
    def storage_dir(self) -> Path:
        return self.workdir / "storage"

    @property
    def config_path(self) -> Path:
        return self.workdir / "config.yml"

    @property
    def log_path(self) -> Path:
        return self.workdir / "registry.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def auth(self) -> httpx.BasicAuth | None:
        """httpx auth for this registry's Basic credentials, if it has any."""
        if self.credentials is None:
            return None
        return httpx.BasicAuth(*self.credentials)

    def client(self, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` with ``base_url`` set to this registry (and its credentials)."""
        kwargs.setdefault("base_url", self.url)
        kwargs.setdefault("timeout", 30.0)
        if self.credentials is not None:
            kwargs.setdefault("auth", self.auth)
        return httpx.Client(**kwargs)

    def log_tail(self, limit: int = _LOG_TAIL_BYTES) -> str:
        """The last *limit* bytes of the registry's log."""
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - limit))
                return fh.read().decode(errors="replace")
        except (OSError, RuntimeError):
            return ""

    # -- config (hooks) ------------------------------------------------------------

    def auth_section(self) -> dict[str, Any] | None:
        """The ``auth`` section of the config, or None for an open registry.

        Override (or pass ``auth=``) to add e.g. ``{"token": {"realm": ..., "service":
        ..., "issuer": ..., "rootcertbundle": ...}}``.
        """
        if self._auth is not None:
            return self._auth
        if self.credentials is not None:
            return {"htpasswd": {"realm": "crid-test", "path": str(self.workdir / "htpasswd")}}
        return None

    def build_config(self) -> dict[str, Any]:
        """The registry config as a dict (written out as JSON, which YAML accepts)."""
        config: dict[str, Any] = {
            "version": "0.1",
            "log": {"level": "info", "fields": {"service": "crid-test-registry"}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage_dir)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {
                "addr": f"127.0.0.1:{self.port}",
                "secret": secrets.token_hex(16),
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
        }
        auth = self.auth_section()
        if auth is not None:
            config["auth"] = auth
        return _merge(config, self._extra_config)

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> Self:
        """Start the registry and wait until ``GET /v2/`` answers 200 or 401."""
        if self._process is not None:
            raise RuntimeError("registry already started")
        if not os.access(self.binary, os.X_OK):
            raise RegistryStartError(f"{self.binary} not found or not executable")
        if self._given_workdir is not None:
            self._workdir = self._given_workdir
            self._workdir.mkdir(parents=True, exist_ok=True)
        else:
            self._workdir = Path(tempfile.mkdtemp(prefix="crid-registry-"))
            self._owns_workdir = True
        self.storage_dir.mkdir(exist_ok=True)
        if self.credentials is not None:
            (self.workdir / "htpasswd").write_text(_bcrypt_htpasswd_line(*self.credentials))

        # A port found free may be taken before the registry binds it: retry then.
        attempts = 1 if self._requested_port is not None else 3
        for attempt in range(attempts):
            self._port = self._requested_port or free_port()
            try:
                self._spawn_and_wait()
                return self
            except RegistryStartError as exc:
                in_use = "address already in use" in str(exc).lower()
                if not in_use or attempt == attempts - 1:
                    self.stop()
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _spawn_and_wait(self) -> None:
        self.config_path.write_text(json.dumps(self.build_config(), indent=2) + "\n")
        self._log = self.log_path.open("ab")
        # REGISTRY_* variables override the config file: keep the caller's out.
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        in_main_thread = threading.current_thread() is threading.main_thread()
        self._process = subprocess.Popen(
            [str(self.binary), "serve", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=env,
            start_new_session=True,
            # PDEATHSIG fires when the starting *thread* ends: only safe from the main one.
            preexec_fn=_set_parent_death_signal if in_main_thread else None,
        )
        _running.add(self)
        try:
            self._wait_ready()
        except RegistryStartError:
            self._terminate()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last_error = "no answer yet"
        with httpx.Client(timeout=2.0) as http:
            while True:
                assert self._process is not None
                code = self._process.poll()
                if code is not None:
                    raise RegistryStartError(
                        f"docker-registry exited with status {code} before answering on "
                        f"{self.host}; log tail:\n{self.log_tail()}"
                    )
                try:
                    response = http.get(f"{self.url}/v2/")
                    if response.status_code in (200, 401):
                        return
                    last_error = f"GET /v2/ answered {response.status_code}"
                except httpx.TransportError as exc:
                    last_error = f"{type(exc).__name__}: {exc}"
                if time.monotonic() >= deadline:
                    raise RegistryStartError(
                        f"docker-registry did not answer on {self.url}/v2/ within "
                        f"{self.startup_timeout:.0f}s ({last_error}); log tail:\n{self.log_tail()}"
                    )
                time.sleep(0.05)

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            else:
                process.wait()
        _running.discard(self)
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        """Stop the process (SIGTERM, SIGKILL after ``stop_timeout``), reap it, clean up."""
        self._terminate()
        if self._owns_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
            self._owns_workdir = False

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "not started"
        return f"<LocalRegistry {where} pid={self.pid}>"


@atexit.register
def _stop_leftovers() -> None:  # pragma: no cover - only on a forgotten stop()
    for registry in list(_running):
        with contextlib.suppress(Exception):
            registry.stop()
