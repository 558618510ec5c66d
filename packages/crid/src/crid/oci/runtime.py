"""The OCI runtime binary (runc by default): its CLI, one subprocess per call.

``OCIRuntime`` speaks the runc-compatible command line (``state``, ``start``, ``kill``,
``delete``, ``update``) against one state root. Creation goes through conmon (see
``crid.oci.conmon``), which runs the runtime's ``create`` itself and holds the stdio.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from crid.config import RuntimeHandler
from crid.errors import ContainerNotFoundError, OCIRuntimeError, RuntimeTimeoutError
from crid.metrics.instruments import observe_runtime_call
from crid.oci._exec import find_binary, run, version_line

__all__ = [
    "ContainerState",
    "OCIRuntime",
    "runtime_binary",
    "runtime_message",
    "runtime_version",
]

Status = Literal["creating", "created", "running", "stopped", "paused"]
_MSG = re.compile(r'msg="((?:[^"\\]|\\.)*)"')
_NOT_FOUND = ("does not exist", "container not found", "not exist")


def runtime_binary(name: str, handler: RuntimeHandler) -> Path | None:
    """The handler's runtime binary, or None when it is not installed."""
    return find_binary(handler.runtime_path, name)


async def runtime_version(binary: Path, *, timeout: float = 5.0) -> str:
    """The first line of ``--version`` (e.g. ``runc version 1.1.5``)."""
    return await version_line(binary, timeout=timeout)


@dataclass(frozen=True, kw_only=True)
class ContainerState:
    """What ``<runtime> state`` reports about one container."""

    id: str
    status: Status
    pid: int
    bundle: str
    created: str


def runtime_message(output: bytes | str) -> str:
    """The runtime's own error message (runc logs ``msg="..."`` lines)."""
    text = (output.decode(errors="replace") if isinstance(output, bytes) else output).strip()
    found = _MSG.findall(text)
    if found:
        return str(found[-1]).replace('\\"', '"')
    return text.splitlines()[-1] if text else ""


class OCIRuntime:
    """One runtime binary with its state directory (``--root``)."""

    def __init__(self, *, name: str, binary: Path, root: Path, timeout: float = 60.0) -> None:
        self.name = name
        self.binary = binary
        self.root = root
        self.timeout = timeout

    def global_args(self) -> list[str]:
        """Arguments every invocation carries (conmon passes them as ``--runtime-arg``)."""
        return [f"--root={self.root}"]

    async def _call(self, *args: str, container_id: str, stdin: bytes | None = None) -> bytes:
        argv = [str(self.binary), *self.global_args(), *args]
        started = time.perf_counter()
        try:
            done = await run(argv, timeout=self.timeout, stdin=stdin)
        except TimeoutError as err:
            observe_runtime_call(self.name, args[0], time.perf_counter() - started, ok=False)
            raise RuntimeTimeoutError(
                f"{self.name} {args[0]} {container_id}: timed out after {self.timeout:g}s"
                " (the runtime was killed)"
            ) from err
        except BaseException:
            observe_runtime_call(self.name, args[0], time.perf_counter() - started, ok=False)
            raise
        observe_runtime_call(
            self.name, args[0], time.perf_counter() - started, ok=done.returncode == 0
        )
        if done.returncode != 0:
            message = runtime_message(done.stderr) or f"exit status {done.returncode}"
            command = f"{self.name} {args[0]}"
            error = (
                ContainerNotFoundError
                if any(marker in message for marker in _NOT_FOUND)
                else OCIRuntimeError
            )
            raise error(
                f"{command} {container_id}: {message}",
                command=command,
                stderr=done.stderr.decode(errors="replace"),
            )
        return done.stdout

    async def state(self, container_id: str) -> ContainerState:
        """The container's status and init pid (ContainerNotFoundError if unknown)."""
        raw = json.loads(await self._call("state", container_id, container_id=container_id))
        return ContainerState(
            id=raw["id"],
            status=raw["status"],
            pid=int(raw.get("pid") or 0),
            bundle=raw.get("bundle", ""),
            created=raw.get("created", ""),
        )

    async def start(self, container_id: str) -> None:
        """Run the created container's process."""
        await self._call("start", container_id, container_id=container_id)

    async def kill(self, container_id: str, signal: int, *, all_processes: bool = False) -> None:
        """Send ``signal`` to the container's init (or every process with ``all_processes``)."""
        args = ["kill", *(["--all"] if all_processes else []), container_id, str(signal)]
        await self._call(*args, container_id=container_id)

    async def delete(self, container_id: str, *, force: bool = False) -> None:
        """Remove the container's runtime state; a container already gone is not an error."""
        args = ["delete", *(["--force"] if force else []), container_id]
        try:
            await self._call(*args, container_id=container_id)
        except ContainerNotFoundError:
            return

    async def update(self, container_id: str, resources: dict[str, Any]) -> None:
        """Apply new resource limits (the runtime-spec ``linux.resources`` object)."""
        await self._call(
            "update",
            "--resources",
            "-",
            container_id,
            container_id=container_id,
            stdin=json.dumps(resources).encode(),
        )
