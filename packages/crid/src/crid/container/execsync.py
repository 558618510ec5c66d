"""ExecSync: one command run to completion inside a running container.

The process is the container's own ``process`` (user, env, capabilities, cwd, no
terminal) with other args, written to a process.json for ``<runtime> exec``. Output is
captured up to ``OUTPUT_LIMIT`` bytes per stream (the rest is read and dropped, so the
command never blocks on a full pipe). On timeout the exec'd process and everything it
started are killed (its pid comes from ``--pid-file``; see ``crid.proctree``), so the
runtime reaps it at once and nothing it forked survives the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from crid import faults
from crid.context import Context
from crid.errors import ExecTimeoutError, InvalidConfigError, InvalidStateError
from crid.limits import check_argv
from crid.oci._exec import environment
from crid.proctree import kill_tree
from crid.state import ContainerState

__all__ = ["OUTPUT_LIMIT", "ExecResult", "exec_sync"]

#: Bytes of stdout and of stderr kept (CRI-O keeps 16 MiB as well).
OUTPUT_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class ExecResult:
    """What the command printed and how it ended."""

    stdout: bytes
    stderr: bytes
    exit_code: int


async def _drain(stream: asyncio.StreamReader | None, limit: int) -> bytes:
    if stream is None:
        return b""
    kept = bytearray()
    while chunk := await stream.read(65536):
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]
    return bytes(kept)


def _write_process(bundle: Path, argv: list[str]) -> Path:
    config = json.loads((bundle / "config.json").read_text())
    process = dict(config["process"])
    process["args"] = argv
    process["terminal"] = False
    fd, name = tempfile.mkstemp(prefix="exec-", suffix=".json", dir=bundle)
    with os.fdopen(fd, "w") as handle:
        json.dump(process, handle)
    return Path(name)


async def exec_sync(ctx: Context, container_id: str, argv: list[str], timeout: float) -> ExecResult:
    """Run ``argv`` in the container; ``timeout`` seconds (0: none) then kill it."""
    if not argv:
        raise InvalidConfigError("ExecSync needs a command")
    check_argv("ExecSync cmd", argv)
    record = ctx.registry.container(container_id)
    if record.state is not ContainerState.RUNNING:
        raise InvalidStateError(f"container {record.id} is {record.state}, not running")
    runtime = ctx.handler(record.runtime_handler).runtime
    bundle = Path(record.bundle)
    process_file = await asyncio.to_thread(_write_process, bundle, argv)
    pid_file = process_file.with_suffix(".pid")
    proc = await asyncio.create_subprocess_exec(
        str(runtime.binary),
        *runtime.global_args(),
        "exec",
        "--process",
        str(process_file),
        "--pid-file",
        str(pid_file),
        record.id,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment(),
    )
    reading = asyncio.gather(
        _drain(proc.stdout, OUTPUT_LIMIT), _drain(proc.stderr, OUTPUT_LIMIT), proc.wait()
    )
    try:
        await faults.point("exec_sync.running")
        stdout, stderr, code = await asyncio.wait_for(
            asyncio.shield(reading), timeout if timeout > 0 else None
        )
    except TimeoutError:
        await _kill(pid_file, proc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reading, 10.0)
        raise ExecTimeoutError(
            f"command {argv!r} in container {record.id} timed out after {timeout:g}s and was killed"
        ) from None
    except BaseException:
        await _kill(pid_file, proc)
        reading.cancel()
        raise
    finally:
        for path in (process_file, pid_file):
            path.unlink(missing_ok=True)
    return ExecResult(stdout=stdout, stderr=stderr, exit_code=code)


async def _kill(pid_file: Path, proc: asyncio.subprocess.Process) -> None:
    """Kill the exec'd process and its descendants (the runtime then exits), else the
    runtime itself.

    Only while the runtime runs: it has not reaped the exec'd process yet, so the pid in
    the pid file still names that process and cannot have been reused.
    """
    if proc.returncode is not None:
        return
    try:
        pid = int((await asyncio.to_thread(pid_file.read_text)).strip())
    except (OSError, ValueError):
        pass
    else:
        await asyncio.to_thread(kill_tree, pid)
    if proc.returncode is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(proc.wait()), 2.0)
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
