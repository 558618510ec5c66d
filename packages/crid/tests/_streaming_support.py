"""Running containers and pods for the streaming tests (exec, attach, port-forward).

Like ``_observe``, these build what RunPodSandbox and CreateContainer would leave: a
READY sandbox (here with its own pinned network namespace, loopback up), and a container
created by conmon + runc from an ``ocispec.generate`` config, with ``--stdin`` and
``--terminal`` when asked, and its CRI config recorded (Attach checks ``stdin`` there).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
from collections.abc import AsyncIterator, Sequence

from crid.context import Context
from crid.server import Daemon
from crid.state import Container, Sandbox
from ocinet import NamespaceKind, pin_pod_namespaces

from ._observe import container, pod

__all__ = ["ctx_of", "net_pod", "running", "url_of"]


def ctx_of(daemon: Daemon) -> Context:
    assert daemon.context is not None
    return daemon.context


def url_of(daemon: Daemon) -> str:
    assert daemon.streaming is not None
    return daemon.streaming.base_url


@contextlib.asynccontextmanager
async def net_pod(ctx: Context) -> AsyncIterator[Sandbox]:
    """A READY sandbox with a pinned network namespace of its own (loopback up)."""
    async with pod(ctx) as sandbox:
        name = f"stream-{secrets.token_hex(4)}"
        pinned = await asyncio.to_thread(
            pin_pod_namespaces, ctx.layout.namespaces, name, (NamespaceKind.NET,)
        )
        try:
            assert pinned.net is not None
            await pinned.net.exec(["ip", "link", "set", "lo", "up"], check=True)
            record = dataclasses.replace(sandbox, namespaces={"network": str(pinned.net.path)})
            await ctx.registry.save_sandbox(record)
            yield record
        finally:
            await asyncio.to_thread(pinned.remove)


@contextlib.asynccontextmanager
async def running(
    ctx: Context,
    sandbox: Sandbox,
    command: Sequence[str],
    *,
    stdin: bool = False,
    stdin_once: bool = False,
    tty: bool = False,
) -> AsyncIterator[Container]:
    """A running container of ``sandbox`` (in its network namespace, if it has one)."""
    async with container(
        ctx,
        sandbox,
        command,
        stdin=stdin,
        stdin_once=stdin_once,
        tty=tty,
        join_pod_network=True,
    ) as record:
        yield record
