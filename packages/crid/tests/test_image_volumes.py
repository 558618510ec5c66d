"""Image volumes (KEP-4639) through the CRI, end to end: a real Daemon, images pulled
from the loopback registry with PullImage as the kubelet does, runc under conmon, and
ocistore's read-only overlay mounts.

Checked: the image's files are readable in the container (whole image, a sub directory,
a file reached through a symlink), writes fail with EROFS, ContainerStatus reports each
mount's image and digest, the image cannot be removed while mounted, bad mounts are
refused with clear codes and leave nothing behind, and RemoveContainer, RemovePodSandbox
and a crid restart (recovering a create cut short) followed by removal leave no mount
and no directory.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.cgroups import Hierarchies
from crid.config import Config
from crid.sandbox.lifecycle import Lifecycle
from crid.server import Daemon
from crid.state import Container, ContainerMeta, ContainerState, Registry
from ociimage.testing import TestImages
from ocistore import Store

from ._lifecycle import runtime_table, write_network
from .conftest import make_config

pytestmark = [
    pytest.mark.root,
    pytest.mark.binaries("runc", "conmon", "/usr/bin/busybox"),
]

MNT = "/mnt/image-volume"


@dataclass
class VolumeEnv:
    """A crid that pulls from the test registry and can be restarted in place."""

    tmp: Path
    config: Config
    cgroup_parent: str
    images: TestImages
    daemon: Daemon | None = None
    channel: grpc.aio.Channel | None = None
    runtime: api_pb2_grpc.RuntimeServiceStub = field(init=False)
    image: api_pb2_grpc.ImageServiceStub = field(init=False)

    async def start(self) -> None:
        self.daemon = Daemon(self.config)
        await self.daemon.start()
        self.channel = grpc.aio.insecure_channel(f"unix://{self.daemon.socket_path}")
        self.runtime = api_pb2_grpc.RuntimeServiceStub(self.channel)
        self.image = api_pb2_grpc.ImageServiceStub(self.channel)

    async def stop(self) -> None:
        if self.channel is not None:
            await self.channel.close()
            self.channel = None
        if self.daemon is not None:
            await self.daemon.stop(grace=0)
            self.daemon = None

    @property
    def storage(self) -> Path:
        assert self.daemon is not None and self.daemon.context is not None
        return self.daemon.context.store.store.root

    async def pull(self, reference: str) -> str:
        reply = await self.image.PullImage(
            api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=reference))
        )
        return str(reply.image_ref)


def _image_table(tmp: Path, host: str) -> str:
    """Registries, policy and lookaside config in ``tmp``; the registry over plain HTTP."""
    conf = tmp / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{host}"\ninsecure = true\n')
    policy = tmp / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    return (
        "[crid.image]\n"
        f'registries_conf = "{conf}"\n'
        f'registries_conf_dir = "{tmp / "registries.conf.d"}"\n'
        f'signature_policy = "{policy}"\n'
        f'registries_d = "{tmp / "registries.d"}"\n'
        'global_auth_file = ""\n'
    )


@contextlib.asynccontextmanager
async def volume_env(tmp: Path, images: TestImages) -> AsyncIterator[VolumeEnv]:
    write_network(tmp)  # the runtime wants a network config; pods here use the host's
    _, config = make_config(tmp, runtime_table(tmp) + _image_table(tmp, images.busybox.host))
    env = VolumeEnv(
        tmp=tmp, config=config, cgroup_parent=f"crid-test-{secrets.token_hex(4)}", images=images
    )
    await env.start()
    try:
        yield env
    finally:
        if env.daemon is not None and env.daemon.context is not None:
            lifecycle = Lifecycle.of(env.daemon.context)
            for pod in list(env.daemon.context.registry.sandboxes()):
                with contextlib.suppress(Exception):
                    await lifecycle.pods.remove(pod.id)
        await env.stop()
        Hierarchies.detect().remove(env.cgroup_parent)


def pod_config(env: VolumeEnv, name: str) -> api_pb2.PodSandboxConfig:
    config = api_pb2.PodSandboxConfig(
        metadata=api_pb2.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="default"),
        log_directory=str(env.tmp / "logs" / name),
        linux=api_pb2.LinuxPodSandboxConfig(cgroup_parent=f"/{env.cgroup_parent}/{name}"),
    )
    ns = config.linux.security_context.namespace_options
    ns.network, ns.ipc, ns.pid = api_pb2.NODE, api_pb2.NODE, api_pb2.CONTAINER
    return config


def image_mount(
    path: str,
    image: str,
    sub_path: str = "",
    *,
    readonly: bool = True,
    recursive_read_only: bool = False,
    **spec: str,
) -> api_pb2.Mount:
    """A mount as the kubelet sends an image volume (always read-only)."""
    return api_pb2.Mount(
        container_path=path,
        readonly=readonly,
        recursive_read_only=recursive_read_only,
        image=api_pb2.ImageSpec(image=image, **spec),
        image_sub_path=sub_path,
    )


def container_config(env: VolumeEnv, name: str, *mounts: api_pb2.Mount) -> api_pb2.ContainerConfig:
    config = api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name=name),
        image=api_pb2.ImageSpec(image=env.images.busybox.reference),
        command=["sleep", "3600"],
        log_path=f"{name}.log",
        mounts=list(mounts),
    )
    config.linux.security_context.namespace_options.pid = api_pb2.CONTAINER
    return config


async def create(
    env: VolumeEnv, pod_id: str, pod: api_pb2.PodSandboxConfig, config: api_pb2.ContainerConfig
) -> str:
    reply = await env.runtime.CreateContainer(
        api_pb2.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)
    )
    return str(reply.container_id)


async def run(env: VolumeEnv, cid: str, *cmd: str) -> api_pb2.ExecSyncResponse:
    return await env.runtime.ExecSync(
        api_pb2.ExecSyncRequest(container_id=cid, cmd=list(cmd), timeout=10)
    )


def mounts_under(root: Path) -> list[str]:
    """Mount points below ``root`` in this mount namespace, from /proc/self/mountinfo."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4] for line in lines if line.split()[4].startswith(f"{root}/")]


def container_dirs(env: VolumeEnv) -> list[str]:
    return sorted(p.name for p in (env.storage / "containers").iterdir())


async def test_image_volume_is_readable_read_only_reported_and_cleaned(
    tmp_path: Path, test_images: TestImages
) -> None:
    async with volume_env(tmp_path, test_images) as env:
        await env.pull(test_images.busybox.reference)
        layered = test_images.layered
        image_ref = await env.pull(layered.reference)
        assert image_ref == layered.config_digest
        pod = pod_config(env, "vol")
        pod_id = (
            await env.runtime.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=pod))
        ).pod_sandbox_id
        mounts = (
            image_mount(MNT, image_ref, user_specified_image=layered.reference),
            image_mount("/mnt/data", layered.reference, "data", recursive_read_only=True),
            image_mount("/mnt/sh", image_ref, "bin/sh"),  # a symlink to busybox, in the image
        )
        cid = await create(env, pod_id, pod, container_config(env, "reader", *mounts))
        await env.runtime.StartContainer(api_pb2.StartContainerRequest(container_id=cid))

        out = await run(env, cid, "cat", f"{MNT}/data/keep.txt", "/mnt/data/added.txt")
        assert (out.exit_code, out.stdout) == (0, b"kept from layer 2\nadded by layer 3\n")
        out = await run(env, cid, "ls", "-A", f"{MNT}/opaque-dir", "/mnt/data")
        assert out.stdout.split() == [
            b"/mnt/data:",
            b"added.txt",
            b"keep.txt",
            f"{MNT}/opaque-dir:".encode(),
            b"new.txt",
        ]
        out = await run(env, cid, "/mnt/sh", "-c", "echo executable")  # not noexec
        assert (out.exit_code, out.stdout) == (0, b"executable\n")
        for target in (f"{MNT}/new", f"{MNT}/data/keep.txt", "/mnt/data/new"):
            out = await run(env, cid, "touch", target)
            assert out.exit_code != 0 and b"Read-only file system" in out.stderr, target
        out = await run(env, cid, "mount", "-o", "remount,rw", MNT)
        assert out.exit_code != 0  # no CAP_SYS_ADMIN: the read-only bind stays read-only

        status = (
            await env.runtime.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=cid))
        ).status
        reported = {m.container_path: m for m in status.mounts}
        assert reported[MNT].image.image == image_ref and reported[MNT].readonly
        assert reported[MNT].image.user_specified_image == layered.reference
        assert reported["/mnt/data"].image.image == layered.reference
        assert reported["/mnt/data"].image_sub_path == "data"
        assert reported["/mnt/data"].recursive_read_only
        assert reported["/mnt/sh"].image_sub_path == "bin/sh"
        assert {reported[p].image.image_ref for p in (MNT, "/mnt/data", "/mnt/sh")} == {image_ref}
        assert not any(m.host_path for m in reported.values())

        assert len(mounts_under(env.storage / "containers" / cid / "volumes")) == 3
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await env.image.RemoveImage(
                api_pb2.RemoveImageRequest(image=api_pb2.ImageSpec(image=image_ref))
            )
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "image volume" in str(err.value.details()) and cid in str(err.value.details())
        listed = await env.image.ImageStatus(
            api_pb2.ImageStatusRequest(image=api_pb2.ImageSpec(image=image_ref))
        )
        assert listed.image.id == image_ref

        await env.runtime.RemoveContainer(api_pb2.RemoveContainerRequest(container_id=cid))
        assert mounts_under(env.storage) == []
        assert container_dirs(env) == []
        assert list((env.storage / "trash").iterdir()) == []
        await env.image.RemoveImage(
            api_pb2.RemoveImageRequest(image=api_pb2.ImageSpec(image=image_ref))
        )
        gone = await env.image.ImageStatus(
            api_pb2.ImageStatusRequest(image=api_pb2.ImageSpec(image=image_ref))
        )
        assert not gone.HasField("image")


async def test_bad_image_mounts_are_refused_and_leave_nothing(
    tmp_path: Path, test_images: TestImages
) -> None:
    async with volume_env(tmp_path, test_images) as env:
        await env.pull(test_images.busybox.reference)
        image_ref = await env.pull(test_images.layered.reference)
        pod = pod_config(env, "bad")
        pod_id = (
            await env.runtime.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=pod))
        ).pod_sandbox_id
        not_pulled = test_images.user_env.reference
        host_and_image = image_mount(MNT, image_ref)
        host_and_image.host_path = str(tmp_path)
        cases = [
            (image_mount(MNT, image_ref, "not-existing"), grpc.StatusCode.NOT_FOUND,
             "'not-existing' does not exist in the image"),
            (image_mount(MNT, image_ref, "data/keep.txt/x"), grpc.StatusCode.NOT_FOUND,
             "is not a directory"),
            (image_mount(MNT, image_ref, "../etc"), grpc.StatusCode.INVALID_ARGUMENT,
             "must not contain '..'"),
            (image_mount(MNT, image_ref, "/etc"), grpc.StatusCode.INVALID_ARGUMENT,
             "must be relative"),
            (image_mount(MNT, image_ref, readonly=False), grpc.StatusCode.INVALID_ARGUMENT,
             "image volumes are read-only"),
            (host_and_image, grpc.StatusCode.INVALID_ARGUMENT, "mutually exclusive"),
            (image_mount(MNT, not_pulled), grpc.StatusCode.NOT_FOUND, not_pulled),
        ]  # fmt: skip
        for mount, code, message in cases:
            config = container_config(env, "bad", mount)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await create(env, pod_id, pod, config)
            assert err.value.code() == code, mount
            assert message in str(err.value.details()), err.value.details()
            listed = await env.runtime.ListContainers(api_pb2.ListContainersRequest())
            assert not listed.containers
            assert mounts_under(env.storage) == [] and container_dirs(env) == []
        # The name is free again: the same container is created once the mount is right.
        cid = await create(
            env, pod_id, pod, container_config(env, "bad", image_mount(MNT, image_ref))
        )
        assert len(mounts_under(env.storage / "containers" / cid / "volumes")) == 1


async def test_volumes_survive_a_restart_and_go_with_the_pod(
    tmp_path: Path, test_images: TestImages
) -> None:
    async with volume_env(tmp_path, test_images) as env:
        await env.pull(test_images.busybox.reference)
        image_ref = await env.pull(test_images.layered.reference)
        pod = pod_config(env, "restart")
        pod_id = (
            await env.runtime.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=pod))
        ).pod_sandbox_id
        running = await create(
            env, pod_id, pod, container_config(env, "running", image_mount(MNT, image_ref, "data"))
        )
        await env.runtime.StartContainer(api_pb2.StartContainerRequest(container_id=running))
        created = await create(
            env, pod_id, pod, container_config(env, "created", image_mount(MNT, image_ref))
        )
        storage = env.storage
        before = sorted(mounts_under(storage))
        assert len([m for m in before if "/volumes/" in m]) == 2

        await env.stop()  # containers keep running; crid's store repair runs at start
        # What a crash inside CreateContainer leaves: a record still UNKNOWN whose root
        # filesystem and image volume were already mounted.
        half = Container(
            id=secrets.token_hex(32),
            name="k8s_half_restart_default_uid-restart_0",
            sandbox_id=pod_id,
            meta=ContainerMeta(name="half"),
            state=ContainerState.UNKNOWN,
            created_at=time.time_ns(),
        )
        registry = Registry.open(Path(env.config.crid.root) / "state.db")
        await registry.save_container(half)
        registry.close()
        with Store.open(storage) as store:
            store.create_container(half.id, image_ref)
            store.mount_container(half.id)
            store.mount_image_volume(half.id, image_ref, sub_path="data")
        assert len(mounts_under(storage / "containers" / half.id)) == 2

        await env.start()
        assert sorted(mounts_under(storage)) == before
        assert half.id not in container_dirs(env)
        out = await run(env, running, "cat", f"{MNT}/keep.txt")
        assert out.stdout == b"kept from layer 2\n"
        status = (
            await env.runtime.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=created))
        ).status
        assert [m.image.image_ref for m in status.mounts if m.container_path == MNT] == [image_ref]

        await env.runtime.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        await env.runtime.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        assert mounts_under(storage) == []
        assert container_dirs(env) == []
        await env.image.RemoveImage(
            api_pb2.RemoveImageRequest(image=api_pb2.ImageSpec(image=image_ref))
        )
