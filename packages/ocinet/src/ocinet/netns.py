"""Pinned namespaces: create, remove, and run code or commands inside them.

A namespace is pinned by bind-mounting its ``/proc/thread-self/ns/<kind>`` file onto a
regular file (as ``ip netns`` and CRI-O's pinns do), so it outlives every process in it.
All namespace switching happens on a fresh thread that ``setns``'s in and back out: the
namespaces of one thread are its own, so the asyncio loop and other threads never move.
A fresh thread per call (measured ~1.1 ms per pin, vs ~2 ms for a forked helper) also
means a thread that could not switch back simply ends instead of returning to a pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import logging
import os
import socket as _socket
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ocinet import _libc
from ocinet.errors import NamespaceError

__all__ = [
    "CommandResult",
    "Namespace",
    "NamespaceKind",
    "PodNamespaces",
    "create_namespace",
    "pin_pod_namespaces",
    "remove_namespace",
    "run_in_namespaces",
    "run_in_namespaces_sync",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


class NamespaceKind(enum.StrEnum):
    """The namespace kinds ocinet pins (the ones a pod shares)."""

    NET = "net"
    IPC = "ipc"
    UTS = "uts"

    @property
    def flag(self) -> int:
        """The CLONE_NEW* flag for unshare/setns."""
        return _FLAGS[self]


_FLAGS = {
    NamespaceKind.NET: _libc.CLONE_NEWNET,
    NamespaceKind.IPC: _libc.CLONE_NEWIPC,
    NamespaceKind.UTS: _libc.CLONE_NEWUTS,
}


@dataclass(frozen=True, kw_only=True)
class CommandResult:
    """What a command run inside a namespace returned."""

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes


@dataclass(frozen=True, kw_only=True)
class Namespace:
    """A pinned namespace: a bind-mounted namespace file at ``path``."""

    kind: NamespaceKind
    path: Path

    def is_pinned(self) -> bool:
        """Whether ``path`` currently holds a namespace (an nsfs bind mount)."""
        return _is_nsfs(self.path)

    def inode(self) -> int:
        """The namespace's inode number (what ``/proc/<pid>/ns/<kind>`` links show)."""
        return self.path.stat().st_ino

    def remove(self) -> None:
        """Unmount and delete the pin; a no-op if already gone."""
        remove_namespace(self.path)

    def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``fn`` on a thread that has entered this namespace; blocks until it returns."""
        return run_in_namespaces_sync([self], fn, *args, **kwargs)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``fn`` on a thread inside this namespace without blocking the event loop."""
        return await run_in_namespaces([self], fn, *args, **kwargs)

    def exec_sync(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
        timeout: float = 30.0,
        check: bool = False,
    ) -> CommandResult:
        """Run a command inside the namespace (it inherits the entering thread's namespaces)."""
        return self.run_sync(_run_command, tuple(argv), env, input, timeout, check)

    async def exec(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
        timeout: float = 30.0,
        check: bool = False,
    ) -> CommandResult:
        """Async :meth:`exec_sync`: the command runs and is waited for on the namespace thread."""
        return await self.run(_run_command, tuple(argv), env, input, timeout, check)

    def spawn(self, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[bytes]:
        """Start a long-running command inside the namespace; the caller waits for it."""
        return self.run_sync(subprocess.Popen, list(argv), **popen_kwargs)

    def socket(
        self,
        family: int = _socket.AF_INET,
        type: int = _socket.SOCK_STREAM,
    ) -> _socket.socket:
        """A socket that belongs to this network namespace, usable from any thread."""
        self._require(NamespaceKind.NET)
        return self.run_sync(_socket.socket, family, type)

    def connect(self, host: str, port: int, timeout: float = 10.0) -> _socket.socket:
        """A TCP connection opened from inside this network namespace (port forwarding)."""
        self._require(NamespaceKind.NET)
        return self.run_sync(_socket.create_connection, (host, port), timeout)

    async def open_connection(
        self,
        host: str,
        port: int,
        timeout: float = 10.0,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """asyncio streams over a TCP connection opened from inside this namespace."""
        self._require(NamespaceKind.NET)
        sock = await self.run(_socket.create_connection, (host, port), timeout)
        sock.setblocking(False)
        return await asyncio.open_connection(sock=sock)

    def _require(self, kind: NamespaceKind) -> None:
        if self.kind is not kind:
            raise NamespaceError(f"{self.path} is a {self.kind} namespace, not {kind}")


@dataclass(frozen=True, kw_only=True)
class PodNamespaces:
    """The pinned namespaces of one pod (any of them may be absent)."""

    net: Namespace | None = None
    ipc: Namespace | None = None
    uts: Namespace | None = None

    def all(self) -> list[Namespace]:
        """The namespaces that are present, in net, ipc, uts order."""
        return [ns for ns in (self.net, self.ipc, self.uts) if ns is not None]

    def remove(self) -> None:
        """Remove every pin (idempotent)."""
        _remove_all(self.all())


def create_namespace(
    path: str | os.PathLike[str], kind: NamespaceKind | str = NamespaceKind.NET
) -> Namespace:
    """Create a new namespace of ``kind`` and pin it at ``path``."""
    kind = NamespaceKind(kind)
    pinned = _pin({kind: Path(path)}, hostname=None)
    return pinned[kind]


def pin_pod_namespaces(
    runtime_dir: str | os.PathLike[str],
    name: str,
    kinds: Iterable[NamespaceKind | str] = (
        NamespaceKind.NET,
        NamespaceKind.IPC,
        NamespaceKind.UTS,
    ),
    *,
    hostname: str | None = None,
) -> PodNamespaces:
    """Create a pod's namespaces in one step, pinned at ``<runtime_dir>/<kind>ns/<name>``.

    ``hostname`` is set inside the new UTS namespace before it is pinned.
    """
    if not name or "/" in name or name in {".", ".."}:
        raise NamespaceError(f"invalid namespace name {name!r}")
    base = Path(runtime_dir)
    wanted = {NamespaceKind(k): base / f"{NamespaceKind(k)}ns" / name for k in kinds}
    if hostname is not None and NamespaceKind.UTS not in wanted:
        raise NamespaceError("a hostname needs a UTS namespace")
    pinned = _pin(wanted, hostname=hostname)
    return PodNamespaces(
        net=pinned.get(NamespaceKind.NET),
        ipc=pinned.get(NamespaceKind.IPC),
        uts=pinned.get(NamespaceKind.UTS),
    )


def remove_namespace(path: str | os.PathLike[str]) -> None:
    """Unmount and delete a pinned namespace file; succeeds if it is already gone."""
    target = os.fspath(path)
    try:
        _libc.umount(target, _libc.MNT_DETACH)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOENT):
            raise NamespaceError(f"cannot unmount namespace {target}: {err}") from err
    try:
        Path(target).unlink(missing_ok=True)
    except OSError as err:
        raise NamespaceError(f"cannot remove namespace file {target}: {err}") from err


def run_in_namespaces_sync(
    namespaces: Sequence[Namespace], fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """Call ``fn`` on a fresh thread that has entered every namespace in ``namespaces``."""
    box: list[Any] = []

    def body() -> None:
        try:
            box.append((True, _call_inside(namespaces, fn, args, kwargs)))
        except BaseException as err:
            box.append((False, err))

    thread = threading.Thread(target=body, name="ocinet-ns", daemon=True)
    thread.start()
    thread.join()
    ok, value = box[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


async def run_in_namespaces(
    namespaces: Sequence[Namespace], fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """Async :func:`run_in_namespaces_sync`: the loop waits on a future, never blocks."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def body() -> None:
        try:
            outcome: tuple[bool, Any] = (True, _call_inside(namespaces, fn, args, kwargs))
        except BaseException as err:
            outcome = (False, err)
        # The loop may have closed while fn ran; then nobody is waiting for the answer.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=body, name="ocinet-ns", daemon=True).start()
    return await future


def _call_inside(
    namespaces: Sequence[Namespace],
    fn: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> T:
    """Enter the namespaces on the current (dedicated) thread, call, and switch back."""
    originals: list[tuple[int, NamespaceKind]] = []
    targets: list[tuple[int, NamespaceKind]] = []
    try:
        for ns in namespaces:
            try:
                targets.append((os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC), ns.kind))
            except OSError as err:
                raise NamespaceError(f"cannot open namespace {ns.path}: {err}") from err
            originals.append(
                (os.open(f"/proc/thread-self/ns/{ns.kind}", os.O_RDONLY | os.O_CLOEXEC), ns.kind)
            )
        entered = 0
        try:
            for fd, kind in targets:
                try:
                    _libc.setns(fd, kind.flag)
                except OSError as err:
                    raise NamespaceError(f"cannot enter {kind} namespace: {err}") from err
                entered += 1
            return fn(*args, **kwargs)
        finally:
            _restore(originals[:entered])
    finally:
        for fd, _ in targets + originals:
            os.close(fd)


def _restore(originals: Sequence[tuple[int, NamespaceKind]]) -> None:
    for fd, kind in originals:
        try:
            _libc.setns(fd, kind.flag)
        except OSError:
            # The thread is dedicated to this call and ends right after it, so a thread
            # stuck in the wrong namespace cannot leak into other work.
            log.exception("event=ns_restore_failed kind=%s", kind)


def _pin(
    wanted: Mapping[NamespaceKind, Path], hostname: str | None
) -> dict[NamespaceKind, Namespace]:
    if not wanted:
        raise NamespaceError("no namespace kinds asked for")
    for path in wanted.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        if _is_nsfs(path):
            raise NamespaceError(f"a namespace is already pinned at {path}")

    def body() -> None:
        flags = 0
        for kind in wanted:
            flags |= kind.flag
        originals = [
            (os.open(f"/proc/thread-self/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC), kind)
            for kind in wanted
        ]
        try:
            _libc.unshare(flags)
            try:
                if hostname is not None:
                    _libc.sethostname(hostname)
                for kind, path in wanted.items():
                    with open(path, "a"):
                        pass
                    _libc.mount(f"/proc/thread-self/ns/{kind}", os.fspath(path), _libc.MS_BIND)
            finally:
                _restore(originals)
        finally:
            for fd, _ in originals:
                os.close(fd)

    try:
        run_in_namespaces_sync([], body)
    except OSError as err:
        _remove_all(Namespace(kind=k, path=p) for k, p in wanted.items())
        raise NamespaceError(f"cannot create namespaces {sorted(wanted)}: {err}") from err
    log.debug(
        "event=ns_pinned kinds=%s paths=%s", ",".join(wanted), ",".join(map(str, wanted.values()))
    )
    return {kind: Namespace(kind=kind, path=path) for kind, path in wanted.items()}


def _remove_all(namespaces: Iterable[Namespace]) -> None:
    errors: list[NamespaceError] = []
    for ns in namespaces:
        try:
            remove_namespace(ns.path)
        except NamespaceError as err:
            errors.append(err)
    if errors:
        raise errors[0]


_NSFS_DEV: int | None = None


def _is_nsfs(path: Path) -> bool:
    global _NSFS_DEV
    if _NSFS_DEV is None:
        _NSFS_DEV = Path("/proc/self/ns/net").stat().st_dev
    try:
        return path.stat().st_dev == _NSFS_DEV
    except OSError:
        return False


def _run_command(
    argv: tuple[str, ...],
    env: Mapping[str, str] | None,
    stdin: bytes | None,
    timeout: float,
    check: bool,
) -> CommandResult:
    try:
        proc = subprocess.run(
            argv,
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            env=dict(env) if env is not None else None,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise NamespaceError(f"command {list(argv)} timed out after {timeout}s") from err
    except OSError as err:
        raise NamespaceError(f"cannot run {list(argv)}: {err}") from err
    result = CommandResult(
        argv=argv, returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr
    )
    if check and proc.returncode != 0:
        raise NamespaceError(
            f"command {list(argv)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}"
        )
    return result
