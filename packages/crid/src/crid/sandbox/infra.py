"""The optional infra (pause) container of a pod (``[crid.runtime] drop_infra_ctr = false``).

The pod's namespaces stay pinned as without it; the infra container joins them, runs
``[crid.image] pause_command`` (default: the image's entrypoint and command) from
``pause_image`` under conmon, in the pod cgroup. It has the pod's id: its bundle is
``<runroot>/containers/<pod id>`` and its exit file ``<exits>/<pod id>``. It has no
container record, so no container RPC ever sees it; the bundle's presence is what says
a pod has one (and survives restarts). ``stopped`` in the bundle marks an infra
container that StopPodSandbox stopped, as opposed to one that died. Its seccomp profile
is the pod's (``LinuxSandboxSecurityContext.seccomp``; none for a privileged pod).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
from pathlib import Path

import ociimage.errors
from crid.cgroups import container_cgroup_path
from crid.container.exit_waits import ExitWaits
from crid.context import Context
from crid.errors import ContainerNotFoundError, CridError, InfraImageError, OCIRuntimeError
from crid.images import ImagePuller
from crid.oci import ConmonOptions, remove_attach_link
from crid.oci.init_signal import init_start_time, signal_init
from crid.state import Sandbox
from crid.translate import sandbox_seccomp
from ocispec.generate import (
    ContainerOptions,
    GeneratedSpec,
    NamespaceOption,
    NamespaceOptions,
    SecurityOptions,
    generate,
)
from ocistore.errors import ContainerNotFoundError as StoreContainerNotFoundError
from ocistore.errors import ImageNotFoundError, StoreError

__all__ = ["INFRA_STOP_TIMEOUT", "InfraContainers"]

_log = logging.getLogger(__name__)

#: StopPodSandbox waits this long after SIGTERM before it kills the infra container.
INFRA_STOP_TIMEOUT = 10.0
_KILL_GRACE = 10.0


class InfraContainers:
    """Creates, watches, stops and removes the infra containers of pods."""

    def __init__(self, ctx: Context, exit_waits: ExitWaits | None = None) -> None:
        self.ctx = ctx
        #: Shared with the containers' (the exit monitor wakes one set of waiters).
        self.exit_waits = exit_waits or ExitWaits()
        self._puller: ImagePuller | None = None

    def bundle(self, sandbox_id: str) -> Path:
        return self.ctx.layout.bundle(sandbox_id)

    def exit_file(self, sandbox_id: str) -> Path:
        return self.ctx.layout.exits / sandbox_id

    # These three are one stat each of a file in the runroot (a tmpfs), made on the event
    # loop: a hop to a worker costs more than the stat, and under load it waits behind
    # other RPCs' work in the executor's queue. Every pod's Stop and Remove asks them.

    async def present(self, sandbox_id: str) -> bool:
        """Whether the pod has an infra container (its bundle exists)."""
        return self.bundle(sandbox_id).is_dir()

    async def exited(self, sandbox_id: str) -> bool:
        """Whether the pod's infra container has ended (conmon wrote its exit file)."""
        return self.exit_file(sandbox_id).exists()

    async def stopped(self, sandbox_id: str) -> bool:
        """Whether StopPodSandbox already stopped it (not merely died)."""
        return Path(self.bundle(sandbox_id), "stopped").exists()  # noqa: ASYNC240

    async def pid(self, sandbox_id: str) -> int:
        """The infra process's host pid (0 when unknown)."""
        try:
            text = await asyncio.to_thread(Path(self.bundle(sandbox_id), "container.pid").read_text)
            return int(text.strip())
        except (OSError, ValueError):
            return 0

    # -- create -----------------------------------------------------------------------

    async def _image_id(self) -> str:
        """The pause image's id: from the store, else pulled (with ``[crid.image]``)."""
        name = self.ctx.config.crid.image.pause_image
        if not name:
            raise InfraImageError("[crid.image] pause_image is empty: no infra container image")
        try:
            return (await self.ctx.store.image(name)).id
        except ImageNotFoundError:
            pass
        if self._puller is None:
            self._puller = ImagePuller(
                self.ctx.store,
                self.ctx.config.crid.image,
                on_failure=self.ctx.gc.collect_store,
                linger=0,  # one pull per node, rarely: hold no connection after it
            )
        _log.info("pulling the pause image", extra={"image": name})
        try:
            return (await self._puller.pull(name)).image.id
        except (ociimage.errors.ImageError, StoreError, CridError) as err:
            raise InfraImageError(f"pause image {name!r} cannot be pulled: {err}") from err

    async def create(self, sandbox: Sandbox) -> tuple[int, int]:
        """Create and start the infra container of ``sandbox``; returns its pid and that
        process's start time (0 if unknown: see :mod:`crid.oci.init_signal`).

        On failure everything made here is removed again before the error propagates.
        """
        image_id = await self._image_id()
        handler = self.ctx.handler(sandbox.runtime_handler)
        try:
            await self._prepare(sandbox, image_id)
            bundle = self.bundle(sandbox.id)
            created = await handler.conmon.create(
                ConmonOptions(
                    container_id=sandbox.id,
                    name=f"{sandbox.name}-infra",
                    bundle=bundle,
                    log_path=bundle / "infra.log",
                    exit_dir=self.ctx.layout.exits,
                    socket_dir=self.ctx.layout.attach,
                    systemd_cgroup=self.ctx.config.crid.runtime.cgroup_manager == "systemd",
                )
            )
            started = init_start_time(created.pid, created.conmon_pid)
            await handler.runtime.start(sandbox.id)
        except BaseException:
            await self.ctx.rollbacks.run(self.remove(sandbox))
            raise
        return created.pid, started

    def cgroup_path(self, sandbox: Sandbox) -> str:
        return container_cgroup_path(
            sandbox.cgroup_parent, sandbox.id, self.ctx.config.crid.runtime.cgroup_manager
        )

    def _namespaces(self, sandbox: Sandbox) -> NamespaceOptions:
        paths = sandbox.namespaces

        def shared(kind: str) -> NamespaceOption:
            path = paths.get(kind)
            return NamespaceOption.pod(path) if path else NamespaceOption.node()

        pid = NamespaceOption.pod(paths["pid"]) if "pid" in paths else NamespaceOption.private()
        return NamespaceOptions(
            pid=pid, network=shared("network"), ipc=shared("ipc"), uts=shared("uts")
        )

    async def _prepare(self, sandbox: Sandbox, image_id: str) -> GeneratedSpec:
        store = self.ctx.store
        await store.create_container(sandbox.id, image_id)
        rootfs = await store.mount_container(sandbox.id)
        image_config = await asyncio.to_thread(store.store.image_config, image_id)
        host = await self.ctx.host_info()
        runtime = self.ctx.config.crid.runtime
        options = ContainerOptions(
            rootfs=str(rootfs),
            image=image_config,
            command=tuple(self.ctx.config.crid.image.pause_command),
            hostname=sandbox.hostname if "uts" in sandbox.namespaces else "",
            cgroups_path=self.cgroup_path(sandbox),
            security=SecurityOptions(
                readonly_rootfs=True,
                no_new_privileges=True,
                default_capabilities=tuple(runtime.default_capabilities),
                seccomp=sandbox_seccomp(sandbox.config, runtime.seccomp_profile),
            ),
            namespaces=self._namespaces(sandbox),
        )
        bundle = self.bundle(sandbox.id)

        def write() -> GeneratedSpec:
            bundle.mkdir(parents=True, exist_ok=True, mode=0o700)
            generated = generate(options, host=host)
            generated.write(bundle)
            return generated

        return await asyncio.to_thread(write)

    # -- stop / remove ----------------------------------------------------------------

    async def _signal(self, sandbox: Sandbox, signum: int) -> None:
        # The pause process joins the pod's PID namespace when the pod shares one.
        shared = "pid" in sandbox.namespaces
        if signal_init(sandbox.infra_pid, sandbox.infra_started, signum, shared_namespace=shared):
            return  # no runtime process needed
        try:
            await self.ctx.handler(sandbox.runtime_handler).runtime.kill(sandbox.id, signum)
        except OCIRuntimeError as err:
            _log.debug("kill infra %s: %s", sandbox.id, err)

    async def _wait_exit(self, sandbox_id: str, timeout: float) -> bool:
        """Until the infra exit file exists (the exit monitor wakes the wait); False
        after ``timeout``."""
        return await self.exit_waits.wait(sandbox_id, timeout, self.exit_file(sandbox_id).exists)

    async def stop(self, sandbox: Sandbox, timeout: float = INFRA_STOP_TIMEOUT) -> None:
        """SIGTERM, SIGKILL after ``timeout``; then mark it stopped. Idempotent."""
        if not await self.present(sandbox.id):
            return
        if not await self.exited(sandbox.id):
            await self._signal(sandbox, signal.SIGTERM)
            if not await self._wait_exit(sandbox.id, timeout):
                await self._signal(sandbox, signal.SIGKILL)
                if not await self._wait_exit(sandbox.id, _KILL_GRACE):
                    raise CridError(f"infra container of pod {sandbox.id} survived SIGKILL")
        await asyncio.to_thread(Path(self.bundle(sandbox.id), "stopped").touch)

    async def remove(self, sandbox: Sandbox) -> None:
        """Delete the runtime container, root filesystem, cgroup, bundle, exit file and
        attach socket link."""
        with contextlib.suppress(CridError):
            await self.ctx.handler(sandbox.runtime_handler).runtime.delete(sandbox.id, force=True)
        cgroup = self.cgroup_path(sandbox)
        store = self.ctx.store.store

        def host_side() -> None:
            # One worker call: under load each hop waits for the executor and the loop.
            with contextlib.suppress(StoreContainerNotFoundError):
                store.remove_container(sandbox.id)  # unmounts its root filesystem first
            if cgroup and ":" not in cgroup:
                with contextlib.suppress(CridError):
                    self.ctx.hierarchies.remove(cgroup)
            shutil.rmtree(self.bundle(sandbox.id), ignore_errors=True)
            self.exit_file(sandbox.id).unlink(missing_ok=True)
            remove_attach_link(self.ctx.layout.attach, sandbox.id)

        await asyncio.to_thread(host_side)

    async def alive(self, sandbox: Sandbox) -> bool:
        """After a restart: whether the infra container still runs."""
        if await self.exited(sandbox.id):
            return False
        try:
            state = await self.ctx.handler(sandbox.runtime_handler).runtime.state(sandbox.id)
        except ContainerNotFoundError:
            return False
        except CridError as err:
            _log.warning("cannot read the state of infra %s: %s", sandbox.id, err)
            return True
        return state.status in ("running", "created")
