"""The container lifecycle: create under conmon, start, stop, record exits, remove.

Every step that changes a container happens under its lock and is persisted before it
is visible. A record is saved (state UNKNOWN) before anything is created, so the name
is reserved at once and a crash halfway leaves a record that start-up cleans away.
Waits (Stop's grace period) happen outside the lock, so a second Stop never waits on
the first one: each sends its signal and waits, bounded by its own timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

from crid import faults
from crid.cdi import cri_devices, inject_spec
from crid.cgroups import container_cgroup_path, oom_kills
from crid.cgroups.systemd_driver import place_conmon
from crid.container.conmon_watch import ConmonWatch
from crid.container.exit_waits import ExitWaits
from crid.container.request import ContainerRequest, container_name
from crid.context import Context
from crid.control.resources import update_container_resources
from crid.errors import (
    CridError,
    InvalidConfigError,
    InvalidRequestError,
    InvalidStateError,
    OCIRuntimeError,
    RuntimeTimeoutError,
    SandboxNotReadyError,
)
from crid.events import Event, EventKind
from crid.images.lookup import find_stored_image
from crid.images.registries import RegistriesCache
from crid.nri.hooks import NRIHooks
from crid.oci import ConmonOptions, remove_attach_link
from crid.oci.init_signal import init_start_time, shares_pid_namespace, signal_init
from crid.sandbox.files import SandboxFiles
from crid.state import Container, ContainerState, ContainerUser, Sandbox, SandboxState
from crid.stats import cgroup_dir
from crid.threads import completion, settled, start_in_thread
from crid.translate import (
    ContainerPaths,
    container_options,
    pod_privileged,
    termination_log_source,
    with_image_volume_refs,
)
from ocispec.generate import (
    GeneratedSpec,
    HostInfo,
    NamespaceMode,
    ResourceOptions,
    generate,
    parse_signal,
)
from ocispec.image import ImageConfig
from ocistore import Image, Store
from ocistore.errors import ContainerNotFoundError as StoreContainerNotFoundError
from ocistore.errors import ImageNotFoundError

__all__ = ["KILL_GRACE", "MESSAGE_LIMIT", "Containers", "remove_rootfs"]

_log = logging.getLogger(__name__)

#: How long to wait for a SIGKILLed container's exit to be recorded before giving up.
KILL_GRACE = 10.0
#: The termination message is cut to this many bytes (as the kubelet does).
MESSAGE_LIMIT = 4096
#: Parsed image configs kept (a few hundred bytes to a few KiB each).
_IMAGE_CONFIGS = 64


def _now() -> int:
    return time.time_ns()


class Containers:
    """Creates, runs and removes the containers of the registry's pods."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._locks: dict[str, asyncio.Lock] = {}
        #: Stops waiting for exit files; the exit monitor wakes them (no polling).
        self.exit_waits = ExitWaits()
        self._registries = RegistriesCache(ctx.config.crid.image)
        self._image_configs: dict[str, ImageConfig] = {}
        #: Each created or running container's conmon, to notice one that dies.
        self.conmon_watch = ConmonWatch(self.conmon_exited)
        self.nri = NRIHooks(ctx)

    def _lock(self, container_id: str) -> asyncio.Lock:
        return self._locks.setdefault(container_id, asyncio.Lock())

    def exit_file(self, container_id: str) -> Path:
        return self.ctx.layout.exits / container_id

    def _publish(self, kind: EventKind, record: Container) -> None:
        self.ctx.events.publish(
            Event(kind=kind, container_id=record.id, sandbox_id=record.sandbox_id)
        )

    # -- create -----------------------------------------------------------------------

    def _stored_image(self, name: str) -> Image:
        """The stored image ``name`` denotes: id, prefix, name, digest, or a short name
        resolved as PullImage resolves it (``busybox`` after pulling ``busybox``).
        Blocking: the create's worker thread calls it."""
        found = find_stored_image(self.ctx.store.store, name, self._registries.get)
        if found is None:
            raise ImageNotFoundError(f"image {name!r} not found: pull it first")
        return found

    async def create(self, request: ContainerRequest) -> Container:
        """Create the container (state CREATED) or leave nothing behind.

        conmon is forked first (it then waits for its start byte); the blocking work
        (image lookup, the record's first write, root filesystem, config.json) follows
        as one worker-thread call, which conmon's start-up overlaps. The record is
        written first in that thread, before anything is created, and the bundle
        directory exists before conmon is forked: a crash at any point leaves a record
        (state UNKNOWN) or an orphan bundle, both of which start-up recovery removes with
        all they own.
        """
        sandbox = self.ctx.registry.sandbox(request.sandbox_id)
        if sandbox.state is not SandboxState.READY:
            raise SandboxNotReadyError(f"pod sandbox {sandbox.id} is not ready")
        if request.privileged and not pod_privileged(sandbox.config):
            # Admission approved the pod's security context, not the container's alone.
            raise InvalidConfigError(
                f"container {request.meta.name!r} is privileged but its pod sandbox"
                f" {sandbox.id} is not: a privileged container needs a privileged pod"
            )
        log_path = self._log_path(sandbox, request)
        handler = self.ctx.handler(sandbox.runtime_handler)
        if request.recursive_read_only:
            features = await self.ctx.handler_features(sandbox.runtime_handler)
            if not features.recursive_read_only_mounts:
                raise InvalidConfigError(
                    f"runtime handler {handler.name!r} does not support recursive read-only"
                    f" mounts ({'; '.join(features.reasons[:1])})"
                )
        host = await self.ctx.host_info()
        pid_candidates = self._pid_namespaces(sandbox, request)
        container_id = secrets.token_hex(32)
        # Image fields are filled in by the worker thread, before the record is written.
        record = Container(
            id=container_id,
            name=container_name(request.meta, sandbox.meta),
            sandbox_id=sandbox.id,
            meta=request.meta,
            state=ContainerState.UNKNOWN,
            created_at=_now(),
            image=request.image,
            labels=dict(request.labels),
            annotations=dict(request.annotations),
            log_path=str(log_path),
            bundle=str(self.ctx.layout.bundle(container_id)),
            runtime_handler=handler.name,
            cgroup_path=container_cgroup_path(
                sandbox.cgroup_parent, container_id, self.ctx.config.crid.runtime.cgroup_manager
            ),
            config=request.config,
        )
        self.ctx.registry.reserve_container(record)
        self.ctx.registry.hide(container_id)  # until created, NRI hooks included
        written: list[Container] = []  # the record the thread wrote (before making anything)
        log_existed = True  # until known: a failure never removes a log it did not make
        work: asyncio.Future[GeneratedSpec] | None = None
        try:
            # Two metadata calls on the event loop (as conmon's own mkdirs are): a hop
            # to a worker would wait behind other creates' work in the executor queue.
            log_existed = log_path.exists()
            Path(record.bundle).mkdir(parents=True, exist_ok=True, mode=0o700)  # noqa: ASYNC240
            prepared: list[GeneratedSpec] = []

            async def prepare_bundle(start: Callable[[], None]) -> None:
                nonlocal record, work
                # With no NRI plugin to adjust the config, the thread sends conmon its
                # start byte as soon as the bundle is written, not after a hop back to
                # the event loop. (A plugin that connects meanwhile finds the container
                # in its sync, as one created before it connected.)
                nri = self.nri.adjusts_creates()
                work = start_in_thread(
                    self._preparation(
                        record,
                        sandbox,
                        request,
                        host,
                        pid_candidates,
                        written,
                        start=None if nri else start,
                    )
                )
                generated = await completion(work)
                record = written[0]
                self.ctx.registry.adopt_container(record)
                if nri:
                    record, generated = await self.nri.create_container(record, sandbox, generated)
                prepared.append(generated)

            # conmon is forked first, and waits for its start byte until the bundle is
            # prepared (and NRI plugins adjusted it).
            created = await handler.conmon.create(
                ConmonOptions(
                    container_id=container_id,
                    name=record.name,
                    bundle=Path(record.bundle),
                    log_path=log_path,
                    exit_dir=self.ctx.layout.exits,
                    socket_dir=self.ctx.layout.attach,
                    terminal=request.tty,
                    stdin=request.stdin,
                    stdin_once=request.stdin_once,
                    systemd_cgroup=self.ctx.config.crid.runtime.cgroup_manager == "systemd",
                ),
                before_start=prepare_bundle,
            )
            generated = prepared[0]
            if generated.dropped_resources:
                _log.debug(
                    "container %s: left out %s",
                    container_id,
                    "; ".join(generated.dropped_resources),
                )
            applied = generated.spec.process.user if generated.spec.process else None
            if applied is not None:
                user = ContainerUser(
                    uid=applied.uid,
                    gid=applied.gid,
                    supplemental_groups=tuple(applied.additional_gids),
                )
                record = dataclasses.replace(record, user=user)
            runtime_config = self.ctx.config.crid.runtime
            if runtime_config.cgroup_manager == "systemd":
                await place_conmon(
                    container_id,
                    created.conmon_pid,
                    pod_slice=sandbox.cgroup_parent,
                    setting=runtime_config.conmon_cgroup,
                )
            await faults.point("create_container.conmon")
            record = dataclasses.replace(
                record,
                state=ContainerState.CREATED,
                pid=created.pid,
                init_started=init_start_time(created.pid, created.conmon_pid),
                shares_pid_namespace=shares_pid_namespace(generated.spec),
                conmon_pid=created.conmon_pid,
                stop_signal=request.stop_signal or generated.stop_signal,
            )
            await self.ctx.registry.save_container(record)
        except BaseException:
            if work is not None:
                await settled(work)  # conmon's failure (or a cancellation) came first
            if written:
                if self.ctx.registry.find_container(container_id) is None:
                    self.ctx.registry.adopt_container(written[0])
            else:
                self.ctx.registry.release_container(record)
            await self.ctx.rollbacks.run(self._undo_create(record, log_existed=log_existed))
            raise
        self.conmon_watch.add(record.id, record.conmon_pid)
        self.ctx.registry.reveal(container_id)
        self._publish(EventKind.CONTAINER_CREATED, record)
        await self.nri.post_create(record)
        return record

    async def _undo_create(self, record: Container, *, log_existed: bool) -> None:
        """Remove all a failed create made, its log file too: the kubelet counts a
        container's restarts from the ``<attempt>.log`` files when no container exists."""
        try:
            await self.cleanup(record)
        except CridError as err:
            # The record stays UNKNOWN: the next start-up's recovery removes it.
            _log.warning("cleaning up the failed create of %s failed: %s", record.id, err)
            return
        if not log_existed:
            await asyncio.to_thread(Path(record.log_path).unlink, missing_ok=True)

    def _log_path(self, sandbox: Sandbox, request: ContainerRequest) -> Path:
        """The container's log file, which must lie inside the pod's log directory.

        conmon appends to it as root, so neither ``..`` nor an absolute path elsewhere
        may steer it to a host file. An absolute path inside the directory is accepted
        (CRI-O does the same); a symlink already standing there is refused.
        """
        directory = Path(
            os.path.normpath(sandbox.log_directory or self.ctx.layout.log_dir / sandbox.id)
        )
        requested = request.log_path or f"{request.meta.name}_{request.meta.attempt}.log"
        path = Path(os.path.normpath(directory / requested))
        if (
            not directory.is_absolute()
            or ".." in Path(requested).parts
            or path == directory
            or not path.is_relative_to(directory)
        ):
            raise InvalidConfigError(
                f"container log path {requested!r} is not inside the pod's log directory"
                f" {str(directory)!r}"
            )
        if path.is_symlink():
            raise InvalidConfigError(f"container log path {str(path)!r} is a symbolic link")
        return path

    def _pid_namespaces(self, sandbox: Sandbox, request: ContainerRequest) -> list[str]:
        """Candidate PID namespaces to join, in order of preference (none: a new one)."""
        if request.pid is NamespaceMode.TARGET:
            target = self.ctx.registry.container(request.pid_target)
            if target.state is not ContainerState.RUNNING or target.pid <= 0:
                raise InvalidStateError(f"PID namespace target {target.id} is not running")
            return [f"/proc/{target.pid}/ns/pid"]
        if request.pid is NamespaceMode.POD and "pid" in sandbox.namespaces:
            return [sandbox.namespaces["pid"]]
        return []

    def _preparation(
        self,
        pending: Container,
        sandbox: Sandbox,
        request: ContainerRequest,
        host: HostInfo,
        pid_candidates: list[str],
        written: list[Container],
        *,
        start: Callable[[], None] | None,
    ) -> Callable[[], GeneratedSpec]:
        """The create's blocking work, as one worker-thread call: image lookup, the
        record's first write (appended to ``written``), root filesystem, image volumes,
        termination log and config.json in the bundle directory; last,
        ``start`` (conmon's start byte) when given.

        One hop instead of one per step: under parallel creates every hop waits its turn
        in the executor's queue and for the event loop. Image volumes belong to the
        container's root filesystem in ocistore, so removing it (on RemoveContainer, a
        failed create, or recovery) releases them too.
        """
        store = self.ctx.store.store
        bundle = Path(pending.bundle)
        termination_log = bundle / "termination-log" if request.termination_message_path else None
        runtime_config = self.ctx.config.crid.runtime
        files = SandboxFiles(directory=self.ctx.layout.sandbox_dir(sandbox.id))
        registry = self.ctx.registry

        def prepare() -> GeneratedSpec:
            image = self._stored_image(request.image)
            # Image volumes: the kubelet pulled them first; a missing one fails before
            # anything is made (NOT_FOUND naming it).
            volume_images = {v.index: self._stored_image(v.image).id for v in request.image_volumes}
            record = dataclasses.replace(
                pending,
                image_ref=image.repo_digests[0] if image.repo_digests else image.id,
                image_id=image.id,
                config=with_image_volume_refs(pending.config, volume_images),
            )
            registry.write_new_container(record)
            written.append(record)
            log_path = Path(record.log_path)
            store.create_container(record.id, record.image_id)
            rootfs = store.mount_container(record.id)
            volumes: dict[int, Path] = {}
            for volume in request.image_volumes:
                mounted = store.mount_image_volume(
                    record.id, volume_images[volume.index], sub_path=volume.sub_path
                )
                volumes[volume.index] = mounted.source
            paths = ContainerPaths(
                rootfs=rootfs,
                files=files,
                cgroups_path=record.cgroup_path,
                termination_log=termination_log,
                pid_namespace=_first_existing(pid_candidates),
                seccomp_default_profile=runtime_config.seccomp_profile,
                default_capabilities=tuple(runtime_config.default_capabilities),
                image_volumes=volumes,
            )
            image_config = self._image_config(record.image_id)
            options = container_options(record.config, sandbox, image_config, paths)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            if termination_log is not None:
                termination_log.touch()
            # The schema check is left to the tests (every config the builder makes
            # validates there): here it cost 8 ms of CPU per create, twice the rest.
            generated = generate(options, host=host, validate_schema=False)
            cdi_devices = cri_devices(record.config)
            if cdi_devices:
                spec = inject_spec(generated.spec, cdi_devices, runtime_config.cdi_spec_dirs)
                generated = dataclasses.replace(generated, spec=spec)
            generated.write(bundle)
            if start is not None:
                start()
            return generated

        return prepare

    def _image_config(self, image_id: str) -> ImageConfig:
        """The image's config, parsed once: an image id is its config's digest, so the
        content never changes (blocking: reads the blob the first time)."""
        found = self._image_configs.get(image_id)
        if found is None:
            found = self.ctx.store.store.image_config(image_id)
            if len(self._image_configs) >= _IMAGE_CONFIGS:
                self._image_configs.clear()
            self._image_configs[image_id] = found
        return found

    # -- start / stop -----------------------------------------------------------------

    async def start(self, container_id: str) -> Container:
        async with self._lock(self.ctx.registry.container(container_id).id):
            record = self.ctx.registry.container(container_id)
            if record.state is not ContainerState.CREATED:
                raise InvalidStateError(
                    f"container {record.id} is {record.state}, not created: cannot start it"
                )
            await self.nri.start(record)
            await self.ctx.handler(record.runtime_handler).runtime.start(record.id)
            await faults.point("start_container.started")
            record = dataclasses.replace(record, state=ContainerState.RUNNING, started_at=_now())
            await self.ctx.registry.save_container(record)
        self._publish(EventKind.CONTAINER_STARTED, record)
        await self.nri.post_start(record)
        return record

    async def update_resources(self, container_id: str, options: ResourceOptions) -> Container:
        """UpdateContainerResources: NRI plugins may change ``options`` first."""
        record = self.ctx.registry.container(container_id)
        wanted = await self.nri.update(record, options)
        await update_container_resources(self.ctx, record, wanted or options)
        await self.nri.post_update(record)
        return record

    async def _stop_signal(self, record: Container) -> int:
        if record.stop_signal:
            return record.stop_signal
        try:  # a record from before the field: its bundle has the signal in a file
            text = await asyncio.to_thread(Path(record.bundle, "stop-signal").read_text)
            return parse_signal(text.strip())
        except (OSError, ValueError):
            return signal.SIGTERM

    async def _signal(self, record: Container, signum: int) -> None:
        if signal_init(
            record.pid,
            record.init_started,
            signum,
            shared_namespace=record.shares_pid_namespace,
        ):
            return  # no runtime process needed (see crid.oci.init_signal)
        try:
            await self.ctx.handler(record.runtime_handler).runtime.kill(record.id, signum)
        except OCIRuntimeError as err:
            # Already stopped (or gone): the exit file tells what happened.
            _log.debug("kill %s: %s", record.id, err)

    async def _wait_exit(self, container_id: str, timeout: float) -> bool:
        """Until the exit file exists or the record says EXITED (marked lost: its conmon
        died, no exit file will come); False after ``timeout``. One stat per wake."""
        path = self.exit_file(container_id)

        def exited() -> bool:
            record = self.ctx.registry.find_container(container_id)
            return path.exists() or (record is not None and record.state is ContainerState.EXITED)

        return await self.exit_waits.wait(container_id, timeout, exited)

    async def stop(self, container_id: str, timeout: float) -> Container | None:
        """Stop signal, then SIGKILL after ``timeout`` seconds (0: at once). Idempotent.

        As the CRI requires of StopContainer, a container that is already gone (None)
        or already stopped is no error; only an empty or ambiguous id is.
        """
        if not container_id:
            raise InvalidRequestError("StopContainer needs a container_id")
        record = self.ctx.registry.find_container(container_id)
        if record is None:
            _log.debug("stop of unknown container %s: nothing to do", container_id)
            return None
        if record.state in (ContainerState.EXITED, ContainerState.UNKNOWN):
            return record
        if timeout > 0:
            await self._signal(record, await self._stop_signal(record))
            await faults.point("stop_container.signalled")
            exited = await self._wait_exit(record.id, timeout)
        else:
            exited = False
        if not exited:
            await self._signal(record, signal.SIGKILL)
            if not await self._wait_exit(record.id, KILL_GRACE):
                raise CridError(f"container {record.id} did not exit after SIGKILL")
        return await self.record_exit(record.id) or self.ctx.registry.container(record.id)

    async def record_exit(self, container_id: str) -> Container | None:
        """Mark the container EXITED from conmon's exit file (None: it has not exited)."""
        async with self._lock(container_id):
            record = self.ctx.registry.find_container(container_id)
            if record is None or record.id != container_id:
                return None
            if record.state in (ContainerState.EXITED, ContainerState.UNKNOWN):
                return record
            found = await asyncio.to_thread(self._read_exit, record)
            if found is None:
                return None
            code, finished_at, oom, message = found
            reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
            record = dataclasses.replace(
                record,
                state=ContainerState.EXITED,
                exit_code=code,
                finished_at=finished_at,
                started_at=record.started_at or finished_at,
                reason=reason,
                message=message,
            )
            await self.ctx.registry.save_container(record)
        self._publish(EventKind.CONTAINER_STOPPED, record)
        await self.nri.stop(record)
        return record

    def _read_exit(self, record: Container) -> tuple[int, int, bool, str] | None:
        path = self.exit_file(record.id)
        try:
            text = path.read_text().strip()
            finished_at = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        try:
            code = int(text)
        except ValueError:
            code = 255
        bundle = Path(record.bundle)
        oom = (bundle / "oom").exists() or oom_kills(
            self.ctx.hierarchies, cgroup_dir(record.cgroup_path)
        ) > 0
        return code, finished_at, oom, self._termination_message(record)

    def _termination_message(self, record: Container) -> str:
        source = termination_log_source(record.config, Path(record.bundle, "termination-log"))
        if source is None:
            return ""
        try:
            with open(source, "rb") as handle:
                return handle.read(MESSAGE_LIMIT).decode(errors="replace")
        except OSError:
            return ""

    async def mark_started(self, record: Container) -> Container:
        """Record as RUNNING a container that the runtime runs but the record calls
        CREATED (crid died inside StartContainer, after the runtime started it)."""
        async with self._lock(record.id):
            record = dataclasses.replace(
                record, state=ContainerState.RUNNING, started_at=record.started_at or _now()
            )
            await self.ctx.registry.save_container(record)
        self._publish(EventKind.CONTAINER_STARTED, record)
        return record

    async def mark_lost(self, record: Container, why: str) -> Container:
        """Record a container whose process vanished without an exit file (crash, reboot)."""
        async with self._lock(record.id):
            current = self.ctx.registry.find_container(record.id)
            if current is None or current.id != record.id:
                return record  # removed meanwhile: nothing to mark
            if current.state not in (ContainerState.CREATED, ContainerState.RUNNING):
                return current  # its exit was recorded meanwhile
            record = dataclasses.replace(
                current,
                state=ContainerState.EXITED,
                exit_code=255,
                finished_at=record.finished_at or _now(),
                reason="Error",
                message=why,
            )
            await self.ctx.registry.save_container(record)
        self._publish(EventKind.CONTAINER_STOPPED, record)
        await self.nri.stop(record)
        self.exit_waits.wake(record.id)  # a stop waiting for it: no exit file will come
        return record

    async def conmon_exited(self, container_id: str) -> None:
        """conmon of a created or running container ended: an exit it recorded is taken
        as usual; one that died without recording it leaves a container nobody monitors
        (no log, no exit code), so the container is killed and marked EXITED (255) with
        the reason, as containerd does when a shim dies. The kubelet then restarts it."""
        if await self.record_exit(container_id) is not None:
            return
        record = self.ctx.registry.find_container(container_id)
        if record is None or record.id != container_id:
            return
        if record.state not in (ContainerState.CREATED, ContainerState.RUNNING):
            return
        _log.warning(
            "conmon (pid %d) of container %s exited while the container was %s: killing it",
            record.conmon_pid,
            record.id,
            record.state,
        )
        try:
            await self.ctx.handler(record.runtime_handler).runtime.kill(record.id, signal.SIGKILL)
        except CridError as err:
            _log.debug("kill %s: %s", record.id, err)
        if await self.record_exit(container_id) is not None:
            return  # a late exit file after all
        await self.mark_lost(
            record,
            f"conmon (pid {record.conmon_pid}) died while the container was {record.state}:"
            " the container was killed",
        )

    # -- remove -----------------------------------------------------------------------

    async def remove(self, container_id: str) -> None:
        """Stop (at once) if needed and remove everything; an unknown id is not an error."""
        if not container_id:
            raise InvalidRequestError("RemoveContainer needs a container_id")
        record = self.ctx.registry.find_container(container_id)
        if record is None:
            return
        if record.state in (ContainerState.CREATED, ContainerState.RUNNING):
            await self.stop(record.id, 0)
        async with self._lock(record.id):
            record = self.ctx.registry.find_container(record.id) or record
            await self.cleanup(record)
        self._locks.pop(record.id, None)
        self._publish(EventKind.CONTAINER_DELETED, record)
        await self.nri.remove(record)

    async def cleanup(self, record: Container) -> None:
        """Remove the runtime container, root filesystem, cgroup (in every hierarchy),
        bundle, exit file, attach socket link and record; the log stays (it is the
        kubelet's to remove).

        A runtime that times out on delete stops the cleanup with the record kept (the
        container may still exist): RemoveContainer can be retried once it answers.
        """
        try:
            await self.ctx.handler(record.runtime_handler).runtime.delete(record.id, force=True)
        except RuntimeTimeoutError:
            raise
        except CridError as err:
            _log.debug("delete %s: %s", record.id, err)
        self.conmon_watch.discard(record.id)
        await faults.point("remove_container.runtime_deleted")
        cgroup = record.cgroup_path

        def host_side() -> None:
            # One worker call: under load each hop waits for the executor and the loop.
            remove_rootfs_sync(self.ctx.store.store, record.id)
            if cgroup and ":" not in cgroup:
                with contextlib.suppress(CridError):
                    self.ctx.hierarchies.remove(cgroup)
            shutil.rmtree(record.bundle or self.ctx.layout.bundle(record.id), ignore_errors=True)
            self.exit_file(record.id).unlink(missing_ok=True)
            remove_attach_link(self.ctx.layout.attach, record.id)

        await asyncio.to_thread(host_side)
        await self.ctx.registry.remove_container(record.id)


def _first_existing(paths: list[str]) -> str:
    return next((path for path in paths if Path(path).exists()), "")


async def remove_rootfs(ctx: Context, container_id: str) -> None:
    """Unmount and delete a container's root filesystem (absent is fine)."""
    await asyncio.to_thread(remove_rootfs_sync, ctx.store.store, container_id)


def remove_rootfs_sync(store: Store, container_id: str) -> None:
    """Blocking :func:`remove_rootfs` (removing a container's rootfs unmounts it first)."""
    with contextlib.suppress(StoreContainerNotFoundError):
        store.remove_container(container_id)
