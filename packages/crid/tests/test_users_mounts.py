"""Supplemental groups policies, ContainerStatus.user, recursive read-only mounts and the
features Status advertises for them, through the CRI against a real Daemon (runc under
conmon, a busybox image with a user who is a member of an extra group in /etc/group).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2
from crid.oci.features import features_of, kernel_has_mount_setattr
from ociimage.testing import build_image, build_layer
from ociimage.testing.images import CREATED, DEFAULT_PATH, Platform, busybox_arch, busybox_layer
from ociimage.testing.layers import file
from ocispec.runtime import parse_features
from ocistore.testing import load_built

from ._lifecycle import (
    Env,
    container_config,
    crid_env,
    exec_sync,
    pod_config,
    run_pod,
    start_container,
    status,
    wait_for_text,
)

pytestmark = [
    pytest.mark.root,
    pytest.mark.binaries("runc", "conmon", "iptables", "/usr/bin/busybox", "/usr/lib/cni/bridge"),
]

GROUPS_IMAGE = "crid-test/groups:latest"
#: The image's user and the groups /etc/group gives it beyond its own.
UID, IMAGE_GROUP, SUPPLEMENTAL = 1000, 50000, 1234


def groups_image() -> object:
    """Busybox plus user ``app`` (1000:1000), a member of ``extra`` (50000) in /etc/group."""
    layer = build_layer(
        [
            file(
                "etc/passwd",
                "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
            ),
            file("etc/group", "root:x:0:\napp:x:1000:\nextra:x:50000:app\nother:x:60000:root\n"),
        ]
    )
    return build_image(
        "crid-test/groups",
        "latest",
        [busybox_layer(), layer],
        platform=Platform("linux", busybox_arch()),
        config={"Env": [DEFAULT_PATH], "User": "app"},
        history=[
            {"created": CREATED, "created_by": "crid-test: busybox"},
            {"created": CREATED, "created_by": "crid-test: users and groups"},
        ],
    )


async def _load_groups_image(env: Env) -> None:
    assert env.daemon.context is not None
    await asyncio.to_thread(
        load_built, env.daemon.context.store.store, groups_image(), [GROUPS_IMAGE]
    )


def _host_pod(env: Env, name: str) -> api_pb2.PodSandboxConfig:
    config = pod_config(env, name)
    config.linux.security_context.namespace_options.network = api_pb2.NODE
    return config


# -- Status ------------------------------------------------------------------------------


def _runc_features_doc() -> dict[str, object]:
    out = subprocess.run(["runc", "features"], capture_output=True, check=True, timeout=10)
    doc: dict[str, object] = json.loads(out.stdout)
    return doc


def test_handler_features_follow_the_runtime_and_the_kernel() -> None:
    doc = _runc_features_doc()
    runc = parse_features(doc)
    assert features_of(runc, mount_setattr=True).recursive_read_only_mounts
    assert not features_of(runc, mount_setattr=False).recursive_read_only_mounts
    without = parse_features(
        {**doc, "mountOptions": [o for o in doc["mountOptions"] if o != "rro"]}  # type: ignore[attr-defined]
    )
    found = features_of(without, mount_setattr=True)
    assert not found.recursive_read_only_mounts and "'rro'" in found.reasons[0]
    assert not features_of(None, mount_setattr=True).recursive_read_only_mounts
    # runc 1.1 has no idmapped mounts, and crid makes no pod user namespaces anyway.
    assert not features_of(runc, mount_setattr=True).user_namespaces
    assert kernel_has_mount_setattr()  # Linux >= 5.12 on these machines


async def test_status_advertises_groups_policy_and_rro_per_handler(tmp_path: Path) -> None:
    runtime = '[crid.runtime.runtimes.old]\nruntime_path = "/bin/false"\n'
    async with crid_env(tmp_path, runtime) as env:
        reply = await env.stub.Status(api_pb2.StatusRequest(verbose=True))
        assert reply.features.supplemental_groups_policy
        assert not reply.features.user_namespaces_host_network
        handlers = {h.name: h.features for h in reply.runtime_handlers}
        assert set(handlers) == {"", "runc", "old"}
        for name in ("", "runc"):
            assert handlers[name].recursive_read_only_mounts, name
            assert not handlers[name].user_namespaces, name
        # A runtime without a 'features' command (runc < 1.1) supports no rro.
        assert not handlers["old"].recursive_read_only_mounts
        reasons = json.loads(reply.info["runtimeHandlerFeatures"])
        assert "unreadable" in reasons["old"]["reasons"][0]


# -- supplemental groups ---------------------------------------------------------------------


def _groups_container(
    name: str, policy: int, run_as_group: int | None = None
) -> api_pb2.ContainerConfig:
    config = container_config(name, ["id -G; exec sleep 600"])
    config.image.image = GROUPS_IMAGE
    sc = config.linux.security_context
    sc.run_as_user.value = UID
    sc.supplemental_groups.append(SUPPLEMENTAL)
    sc.supplemental_groups_policy = policy  # type: ignore[assignment]
    if run_as_group is not None:
        sc.run_as_group.value = run_as_group
    return config


def _ids(text: str) -> set[int]:
    return {int(word) for word in text.split()}


async def _groups_of(env: Env, pod: api_pb2.PodSandboxConfig, container_id: str) -> set[int]:
    """The groups of the first process (its log) and of an exec'd one, which must agree."""
    name = (await status(env, container_id)).metadata.name
    log = Path(pod.log_directory) / f"{name}.log"
    text = await wait_for_text(log, "stdout F ")
    first = _ids(text.splitlines()[0].split(" F ", 1)[1])
    reply = await exec_sync(env, container_id, ["id", "-G"])
    assert reply.exit_code == 0, reply.stderr
    assert _ids(reply.stdout.decode()) == first
    return first


async def test_merge_and_strict_groups_are_applied_and_reported(tmp_path: Path) -> None:
    async with crid_env(tmp_path) as env:
        await _load_groups_image(env)
        pod = _host_pod(env, "groups")
        pod_id = await run_pod(env, pod)
        cases = {
            "merge": (api_pb2.Merge, None, UID, {UID, SUPPLEMENTAL, IMAGE_GROUP}),
            "strict": (api_pb2.Strict, None, UID, {UID, SUPPLEMENTAL}),
            # run_as_group changes the primary group; Merge still adds the user's groups.
            "merge-gid": (api_pb2.Merge, 3000, 3000, {3000, SUPPLEMENTAL, IMAGE_GROUP}),
            "strict-gid": (api_pb2.Strict, 3000, 3000, {3000, SUPPLEMENTAL}),
        }
        for name, (policy, group, gid, groups) in cases.items():
            container_id = await start_container(
                env, pod_id, pod, _groups_container(name, policy, group)
            )
            assert await _groups_of(env, pod, container_id) == groups, name
            user = (await status(env, container_id)).user.linux
            assert (user.uid, user.gid) == (UID, gid), name
            assert set(user.supplemental_groups) == groups, name
            assert user.supplemental_groups[0] == gid, name  # the primary group first
            reply = await exec_sync(env, container_id, ["id", "-u"])
            assert reply.stdout.decode().strip() == str(UID)


# -- recursive read-only mounts ----------------------------------------------------------------


@pytest.fixture
def host_dir_with_submount(tmp_path: Path) -> Iterator[Path]:
    """A host directory with a tmpfs mounted at its ``tmpfs`` subdirectory."""
    host = tmp_path / "volume"
    (host / "tmpfs").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "none", str(host / "tmpfs")], check=True)
    try:
        yield host
    finally:
        subprocess.run(["umount", "-l", str(host / "tmpfs")], check=True)


def _mount_container(name: str, **mount: object) -> api_pb2.ContainerConfig:
    config = container_config(name, ["exec sleep 600"])
    config.mounts.append(api_pb2.Mount(container_path="/mnt", **mount))  # type: ignore[arg-type]
    return config


async def test_recursive_read_only_covers_submounts(
    tmp_path: Path, host_dir_with_submount: Path
) -> None:
    host = str(host_dir_with_submount)
    async with crid_env(tmp_path) as env:
        pod = _host_pod(env, "rro")
        pod_id = await run_pod(env, pod)
        rro = await start_container(
            env,
            pod_id,
            pod,
            _mount_container("rro", host_path=host, readonly=True, recursive_read_only=True),
        )
        plain = await start_container(
            env, pod_id, pod, _mount_container("plain", host_path=host, readonly=True)
        )
        for container_id in (rro, plain):
            reply = await exec_sync(env, container_id, ["touch", "/mnt/top"])
            assert reply.exit_code != 0 and b"Read-only file system" in reply.stderr
        reply = await exec_sync(env, rro, ["touch", "/mnt/tmpfs/file"])
        assert reply.exit_code != 0 and b"Read-only file system" in reply.stderr
        reply = await exec_sync(env, plain, ["touch", "/mnt/tmpfs/file"])
        assert reply.exit_code == 0, reply.stderr
        assert (host_dir_with_submount / "tmpfs" / "file").exists()
        mounts = (await status(env, rro)).mounts
        assert [(m.container_path, m.recursive_read_only) for m in mounts] == [("/mnt", True)]


async def test_bad_recursive_read_only_mounts_are_refused(
    tmp_path: Path, host_dir_with_submount: Path
) -> None:
    host = str(host_dir_with_submount)
    runtime = '[crid.runtime.runtimes.old]\nruntime_path = "/bin/false"\n'
    async with crid_env(tmp_path, runtime) as env:
        pod = _host_pod(env, "bad")
        pod_id = await run_pod(env, pod)
        cases: list[tuple[dict[str, object], str]] = [
            ({"readonly": False}, "needs readonly"),
            (
                {"readonly": True, "propagation": api_pb2.PROPAGATION_HOST_TO_CONTAINER},
                "PROPAGATION_PRIVATE, not PROPAGATION_HOST_TO_CONTAINER",
            ),
            (
                {"readonly": True, "propagation": api_pb2.PROPAGATION_BIDIRECTIONAL},
                "PROPAGATION_PRIVATE, not PROPAGATION_BIDIRECTIONAL",
            ),
        ]
        for fields, message in cases:
            config = _mount_container("bad", host_path=host, recursive_read_only=True, **fields)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await env.stub.CreateContainer(
                    api_pb2.CreateContainerRequest(
                        pod_sandbox_id=pod_id, config=config, sandbox_config=pod
                    )
                )
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert message in (caught.value.details() or "")

        # A handler whose runtime cannot say it supports rro gets none.
        old_pod = _host_pod(env, "old")
        old_id = str(
            (
                await env.stub.RunPodSandbox(
                    api_pb2.RunPodSandboxRequest(config=old_pod, runtime_handler="old")
                )
            ).pod_sandbox_id
        )
        config = _mount_container("rro", host_path=host, readonly=True, recursive_read_only=True)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await env.stub.CreateContainer(
                api_pb2.CreateContainerRequest(
                    pod_sandbox_id=old_id, config=config, sandbox_config=old_pod
                )
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "'old' does not support recursive read-only" in (caught.value.details() or "")
        listed = await env.stub.ListContainers(api_pb2.ListContainersRequest())
        assert list(listed.containers) == []  # nothing was left behind
