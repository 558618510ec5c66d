"""The pod sandbox lifecycle: run (namespaces, files, cgroup, network), stop, remove.

The pod's network, IPC and UTS namespaces are pinned as bind mounts
(``ocinet.pin_pod_namespaces``) and joined by path by its containers; the pod's sysctls
are written into them once the network is attached. A shared PID
namespace is pinned too, held open by a tiny holder process (``crid.sandbox.pidns``).
With ``drop_infra_ctr = false`` an infra container joins them as the last step
(``crid.sandbox.infra``); its death makes the pod NOTREADY. The record is saved first
(NOTREADY: this reserves the name) and marked READY once everything is in place; any
failure undoes every step in reverse and forgets the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from crid import faults
from crid.cgroups import check_parent_driver, remove_pod_cgroup
from crid.container.manager import Containers
from crid.context import Context
from crid.control.resources import apply_pod_resources
from crid.errors import CridError, InvalidConfigError, InvalidRequestError
from crid.events import Event, EventKind
from crid.sandbox.files import SandboxFiles, remove_files, write_files
from crid.sandbox.infra import InfraContainers
from crid.sandbox.pidns import pin_pid_namespace, release_pid_namespace
from crid.sandbox.request import PodRequest
from crid.state import Sandbox, SandboxState
from crid.threads import run_to_completion
from crid.translate import wants_pod_network
from ocinet import NamespaceKind, NetError, PodRef, pin_pod_namespaces, remove_namespace
from ocinet.netns import Namespace, run_in_namespaces
from ocispec.generate import (
    DEFAULT_SHM_SIZE,
    NamespaceMode,
    ResourceOptions,
    sysctl_path,
    validate_sysctls,
)

__all__ = ["Pods"]

_log = logging.getLogger(__name__)
_KEYS = {NamespaceKind.NET: "network", NamespaceKind.IPC: "ipc", NamespaceKind.UTS: "uts"}
#: Pin directory names (``<kind>ns``) and the record's namespace keys they belong to.
_PINS = ("net", "ipc", "uts", "pid")
_PIN_OF = {"network": "net", "ipc": "ipc", "uts": "uts", "pid": "pid"}
#: Pods checked at once at start-up (each may wait on one runtime call).
_RECOVERY_CONCURRENCY = 16


def _write_sysctls(sysctls: Mapping[str, str]) -> None:
    """Runs inside the pod's namespaces; names are validated and normalized."""
    for name, value in sysctls.items():
        try:
            Path("/proc/sys", sysctl_path(name)).write_text(value)
        except OSError as err:
            raise InvalidConfigError(f"cannot set sysctl {name}={value!r}: {err}") from err


def _unpin(paths: list[Path]) -> None:
    """Remove a pod's namespace pins (absent ones are fine)."""
    for path in paths:
        remove_namespace(path)


async def _all(steps: Sequence[Awaitable[Any]]) -> list[Any]:
    """The steps' results, run at once; each runs to its end before the first failure
    (one that is not a cancellation, if any) is raised."""
    done = await asyncio.gather(*steps, return_exceptions=True)
    failures = [outcome for outcome in done if isinstance(outcome, BaseException)]
    if failures:
        raise next((f for f in failures if not isinstance(f, asyncio.CancelledError)), failures[0])
    return done


def _all_pinned(paths: list[Path]) -> bool:
    return all(Namespace(kind=NamespaceKind.NET, path=path).is_pinned() for path in paths)


class Pods:
    """Runs, stops and removes pod sandboxes."""

    def __init__(self, ctx: Context, containers: Containers) -> None:
        self.ctx = ctx
        self.containers = containers
        self.infra = InfraContainers(ctx, containers.exit_waits)
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, sandbox_id: str) -> asyncio.Lock:
        return self._locks.setdefault(sandbox_id, asyncio.Lock())

    def files(self, sandbox_id: str) -> SandboxFiles:
        return SandboxFiles(directory=self.ctx.layout.sandbox_dir(sandbox_id))

    def _publish(self, kind: EventKind, sandbox_id: str) -> None:
        self.ctx.events.publish(Event(kind=kind, container_id=sandbox_id, sandbox_id=sandbox_id))

    async def run(self, request: PodRequest) -> Sandbox:
        """Create the pod sandbox (READY), or leave nothing behind."""
        check_parent_driver(request.cgroup_parent, self.ctx.config.crid.runtime.cgroup_manager)
        handler = self.ctx.handler(request.runtime_handler)
        private_net = request.network is not NamespaceMode.NODE
        private_ipc = request.ipc is not NamespaceMode.NODE
        sysctls = validate_sysctls(
            request.sysctls,
            private_network=private_net,
            private_ipc=private_ipc,
            private_uts=private_net,  # the pod's UTS namespace goes with its network
        )
        sandbox_id = secrets.token_hex(32)
        sandbox = Sandbox(
            id=sandbox_id,
            name=request.name,
            meta=request.meta,
            state=SandboxState.NOTREADY,
            created_at=time.time_ns(),
            runtime_handler=request.runtime_handler or handler.name,
            labels=dict(request.labels),
            annotations=dict(request.annotations),
            hostname=request.hostname,
            log_directory=request.log_directory,
            cgroup_parent=request.cgroup_parent,
            network=self.ctx.config.crid.network.cni_default_network,
            config=request.config,
        )
        self.ctx.registry.hide(sandbox_id)  # until READY, NRI hooks included
        await self.ctx.registry.save_sandbox(sandbox)
        undo: list[Callable[[], Awaitable[object]]] = []
        drop_infra = self.ctx.config.crid.runtime.drop_infra_ctr
        try:
            async with self._lock(sandbox_id):
                sandbox = await self._setup(sandbox, request, sysctls, undo)
                await self.containers.nri.run_pod(sandbox)
                await self.ctx.registry.save_sandbox(sandbox)
        except BaseException:
            await self.ctx.rollbacks.run(self._undo(sandbox_id, undo))
            raise
        self.ctx.registry.reveal(sandbox_id)
        self._publish(EventKind.CONTAINER_CREATED, sandbox_id)
        self._publish(EventKind.CONTAINER_STARTED, sandbox_id)
        if drop_infra:
            return sandbox  # no infra container that could have died
        if await self.infra_exited(sandbox_id):  # it died before the pod was READY
            return self.ctx.registry.sandbox(sandbox_id)
        return sandbox

    async def _setup(
        self,
        sandbox: Sandbox,
        request: PodRequest,
        sysctls: Mapping[str, str],
        undo: list[Callable[[], Awaitable[object]]],
    ) -> Sandbox:
        """Pin the namespaces; then, at once, CNI ADD and the host-side rest (files, the
        PID namespace holder, the pod cgroup): the plugins take most of the time and
        need only the network namespace.

        Each undo is registered before its step and tolerates what the step did not
        make; a worker thread is waited for even when the RPC is cancelled.
        """
        files = self.files(sandbox.id)
        private_net = request.network is not NamespaceMode.NODE
        private_ipc = request.ipc is not NamespaceMode.NODE
        kinds = [NamespaceKind.NET, NamespaceKind.UTS] if private_net else []
        if private_ipc:
            kinds.append(NamespaceKind.IPC)
        base = self.ctx.layout.namespaces
        pid_pin = base / "pidns" / sandbox.id if request.pid is NamespaceMode.POD else None
        cgroupfs = self.ctx.config.crid.runtime.cgroup_manager == "cgroupfs"
        parent = request.cgroup_parent
        if not (parent and ":" not in parent and cgroupfs):
            parent = ""
        undo.append(lambda: asyncio.to_thread(remove_files, files))
        namespaces: dict[str, str] = {}
        pinned_all: list[Namespace] = []
        if kinds:
            pins = [base / f"{kind}ns" / sandbox.id for kind in kinds]
            undo.append(lambda: asyncio.to_thread(_unpin, pins))
            pinned = await run_to_completion(
                functools.partial(
                    pin_pod_namespaces,
                    base,
                    sandbox.id,
                    kinds,
                    hostname=(request.hostname or None) if private_net else None,
                )
            )
            pinned_all = list(pinned.all())
            namespaces = {_KEYS[ns.kind]: str(ns.path) for ns in pinned_all}
        if pid_pin is not None:
            undo.append(lambda: asyncio.to_thread(release_pid_namespace, pid_pin))
            namespaces["pid"] = str(pid_pin)
        if parent:
            undo.append(lambda: asyncio.to_thread(remove_pod_cgroup, self.ctx.hierarchies, parent))

        def host_side() -> None:
            write_files(
                files,
                hostname=request.hostname,
                dns=request.dns,
                shm_size=DEFAULT_SHM_SIZE,
                host_ipc=not private_ipc,
            )
            if pid_pin is not None:
                pin_pid_namespace(pid_pin)
            if parent:
                self.ctx.hierarchies.create(parent)

        async def network() -> tuple[str, ...]:
            if not private_net:
                return ()
            pod = PodRef(
                namespace=request.meta.namespace, name=request.meta.name, uid=request.meta.uid
            )
            netns = namespaces["network"]
            result = await self.ctx.network.setup(
                container_id=sandbox.id,
                netns=netns,
                pod=pod,
                port_mappings=request.port_mappings,
            )
            undo.append(
                lambda: self.ctx.network.teardown(container_id=sandbox.id, netns=netns, pod=pod)
            )
            await faults.point("run_pod_sandbox.network")
            return tuple(str(ip.ip) for ip in result.ips)

        # Both run to their end before a failure of either is raised (and undone).
        _, ips = await _all([run_to_completion(host_side), network()])
        if sysctls and pinned_all:
            # After the network: per-interface ones (net.ipv4.conf.eth0.*) need CNI's links.
            await run_in_namespaces(pinned_all, _write_sysctls, sysctls)
        sandbox = dataclasses.replace(sandbox, namespaces=namespaces, ips=ips)
        if not self.ctx.config.crid.runtime.drop_infra_ctr:
            infra_of = sandbox
            undo.append(lambda: self.infra.remove(infra_of))
            pid, started = await self.infra.create(sandbox)
            sandbox = dataclasses.replace(sandbox, infra_pid=pid, infra_started=started)
        return dataclasses.replace(sandbox, state=SandboxState.READY)

    async def infra_exited(self, sandbox_id: str) -> bool:
        """Mark a READY pod NOTREADY when its infra container died; True if it did.

        A pod whose lock is held is skipped: Run checks again when it finishes, and
        Stop and Remove make the pod NOTREADY themselves.
        """
        sandbox = self.ctx.registry.find_sandbox(sandbox_id)
        if sandbox is None or sandbox.id != sandbox_id or sandbox.state is not SandboxState.READY:
            return False
        lock = self._lock(sandbox_id)
        if lock.locked() or not await self.infra.exited(sandbox_id):
            return False
        async with lock:
            sandbox = self.ctx.registry.sandbox(sandbox_id)
            if sandbox.state is not SandboxState.READY:
                return False
            _log.warning("infra container of pod %s exited: the pod is not ready", sandbox_id)
            await self.ctx.registry.save_sandbox(
                dataclasses.replace(sandbox, state=SandboxState.NOTREADY)
            )
        self._publish(EventKind.CONTAINER_STOPPED, sandbox_id)
        return True

    async def _undo(self, sandbox_id: str, undo: list[Callable[[], Awaitable[object]]]) -> None:
        for step in reversed(undo):
            try:
                await step()
            except Exception:
                _log.exception("undoing a failed RunPodSandbox step failed (pod %s)", sandbox_id)
        await self.ctx.registry.remove_sandbox(sandbox_id)
        self._locks.pop(sandbox_id, None)

    async def stop(self, sandbox_id: str) -> None:
        """Kill every container, detach the network, mark NOTREADY. Idempotent."""
        if not sandbox_id:
            raise InvalidRequestError("StopPodSandbox needs a pod_sandbox_id")
        sandbox = self.ctx.registry.find_sandbox(sandbox_id)
        if sandbox is None:
            return
        async with self._lock(sandbox.id):
            sandbox = self.ctx.registry.sandbox(sandbox.id)
            # A pod made NOTREADY by its infra container's death still has its network.
            infra_pending = await self.infra.present(sandbox.id) and not await self.infra.stopped(
                sandbox.id
            )
            await asyncio.gather(
                *(self.containers.stop(c.id, 0) for c in self.ctx.registry.containers(sandbox.id))
            )
            await self.infra.stop(sandbox)
            if sandbox.state is SandboxState.READY:
                await self.containers.nri.stop_pod(sandbox)
            await faults.point("stop_pod_sandbox.containers_stopped")
            if sandbox.state is SandboxState.NOTREADY and not infra_pending:
                return
            await self._teardown_network(sandbox)
            was_ready = sandbox.state is SandboxState.READY
            await self.ctx.registry.save_sandbox(
                dataclasses.replace(sandbox, state=SandboxState.NOTREADY, network_detached=True)
            )
            if not was_ready:
                return
        self._publish(EventKind.CONTAINER_STOPPED, sandbox.id)

    async def update_resources(
        self,
        sandbox_id: str,
        options: ResourceOptions,
        overhead: ResourceOptions,
        resources: ResourceOptions,
    ) -> None:
        """UpdatePodSandboxResources: NRI plugins hear of it first (and may refuse)."""
        sandbox = self.ctx.registry.sandbox(sandbox_id)
        await self.containers.nri.update_pod(sandbox, overhead, resources)
        await apply_pod_resources(
            self.ctx.hierarchies, sandbox.cgroup_parent, options, self.ctx.controllers
        )
        await self.containers.nri.post_update_pod(sandbox)

    async def _teardown_network(self, sandbox: Sandbox) -> None:
        netns = sandbox.namespaces.get("network")
        if netns is None:
            return
        meta = sandbox.meta
        present = Path(netns).exists()  # noqa: ASYNC240 (a pin in the runroot: one stat)
        await self.ctx.network.teardown(
            container_id=sandbox.id,
            netns=netns if present else "",
            pod=PodRef(namespace=meta.namespace, name=meta.name, uid=meta.uid),
        )

    async def remove(self, sandbox_id: str) -> None:
        """Remove the containers, namespaces, files, cgroup and record. Idempotent."""
        if not sandbox_id:
            raise InvalidRequestError("RemovePodSandbox needs a pod_sandbox_id")
        sandbox = self.ctx.registry.find_sandbox(sandbox_id)
        if sandbox is None:
            return
        await self.stop(sandbox.id)
        async with self._lock(sandbox.id):
            # The containers and the infra container are stopped and independent now: all
            # are removed at once (each is a runtime delete and a worker's host-side work).
            infra = not self.ctx.config.crid.runtime.drop_infra_ctr or await self.infra.present(
                sandbox.id
            )
            containers = self.ctx.registry.containers(sandbox.id)
            removals = [self.containers.remove(container.id) for container in containers]
            if infra:
                removals.append(self.infra.remove(sandbox))
            await _all(removals)
            sandbox = self.ctx.registry.sandbox(sandbox.id)
            if wants_pod_network(sandbox.config) and not sandbox.network_detached:
                # A pod cut short by a crash, or one whose namespace a reboot took (Stop
                # skips a NOTREADY pod), still holds its IPAM lease and cached result.
                # One that Stop detached has neither: DEL'ing again would only cost the
                # plugins' runs (14 ms here).
                await self._teardown_half_created(sandbox)
            await self.containers.nri.remove_pod(sandbox)
            await faults.point("remove_pod_sandbox.containers_removed")
            await self._release(sandbox)
            await self.ctx.registry.remove_sandbox(sandbox.id)
        self._locks.pop(sandbox.id, None)
        self._publish(EventKind.CONTAINER_DELETED, sandbox.id)

    async def _release(self, sandbox: Sandbox) -> None:
        files = self.files(sandbox.id)

        # The conventional pin paths too: a RunPodSandbox cut short by a crash pinned
        # namespaces its NOTREADY record does not list yet.
        pins = {kind: self.ctx.layout.namespaces / f"{kind}ns" / sandbox.id for kind in _PINS}
        pins.update({_PIN_OF[key]: Path(path) for key, path in sandbox.namespaces.items()})

        parent = sandbox.cgroup_parent

        def release() -> None:
            for kind, path in pins.items():
                if kind == "pid":
                    release_pid_namespace(path)
                else:
                    remove_namespace(path)
            remove_files(files)
            if parent and ":" not in parent:
                with contextlib.suppress(CridError):
                    remove_pod_cgroup(self.ctx.hierarchies, parent)

        await asyncio.to_thread(release)

    async def _teardown_half_created(self, sandbox: Sandbox) -> None:
        """DEL what a RunPodSandbox cut short by a crash, or a reboot, left attached (from
        the CNI cache; nothing cached is fine)."""
        try:
            await self.ctx.network.teardown(container_id=sandbox.id)
        except NetError as err:
            _log.warning("network teardown of half-created pod %s failed: %s", sandbox.id, err)

    async def recover(self) -> None:
        """After a restart: pods whose namespaces vanished (a reboot) are NOTREADY; files
        and namespace pins no pod owns are removed."""
        known = {s.id for s in self.ctx.registry.sandboxes()}
        # Concurrently, as containers are: an infra container's runtime call may hang.
        limit = asyncio.Semaphore(_RECOVERY_CONCURRENCY)

        async def check(sandbox: Sandbox) -> None:
            async with limit:
                paths = [Path(p) for p in sandbox.namespaces.values()]
                alive = await asyncio.to_thread(_all_pinned, paths)
                if alive and await self.infra.present(sandbox.id):
                    alive = await self.infra.alive(sandbox)
            if not alive:
                await self.ctx.registry.save_sandbox(
                    dataclasses.replace(sandbox, state=SandboxState.NOTREADY)
                )

        ready = [s for s in self.ctx.registry.sandboxes() if s.state is SandboxState.READY]
        await asyncio.gather(*(check(sandbox) for sandbox in ready))
        layout = self.ctx.layout

        def orphans() -> None:
            base = layout.sandbox_dir("x").parent
            for directory in base.iterdir() if base.is_dir() else ():
                if directory.name not in known:
                    remove_files(SandboxFiles(directory=directory))
            for kind in _KEYS:
                pins = layout.namespaces / f"{kind}ns"
                for pin in pins.iterdir() if pins.is_dir() else ():
                    if pin.name not in known:
                        remove_namespace(pin)
            pid_pins = layout.namespaces / "pidns"
            for pin in pid_pins.iterdir() if pid_pins.is_dir() else ():
                if pin.name not in known:
                    release_pid_namespace(pin)

        await asyncio.to_thread(orphans)
