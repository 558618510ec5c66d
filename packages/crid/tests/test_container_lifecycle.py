"""Pods and containers through the CRI, end to end (helpers in ``_lifecycle``): a real
Daemon, runc under conmon, a CNI bridge network and a busybox image in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import time
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2
from crid.events import EventKind
from ocistore.testing import load_built

from ._lifecycle import (
    BUILT,
    IMAGE,
    container_config,
    crid_env,
    exec_sync,
    is_mount,
    pod_config,
    run_pod,
    start_container,
    status,
    wait_exited,
    wait_for_comm,
    wait_for_text,
)

pytestmark = [
    pytest.mark.root,
    pytest.mark.binaries("runc", "conmon", "iptables", "/usr/bin/busybox", "/usr/lib/cni/bridge"),
]

# -- pods and containers ------------------------------------------------------------------


async def test_full_pod_lifecycle(tmp_path: Path) -> None:
    async with crid_env(tmp_path) as env:
        dns = api_pb2.DNSConfig(servers=["10.96.0.10"], searches=["svc.local"], options=["ndots:2"])
        pod = pod_config(env, dns=dns, sysctls={"net.ipv4.ip_unprivileged_port_start": "80"})
        pod_id = await run_pod(env, pod)
        assert len(pod_id) == 64 and int(pod_id, 16) >= 0

        reply = await env.stub.PodSandboxStatus(
            api_pb2.PodSandboxStatusRequest(pod_sandbox_id=pod_id[:12], verbose=True)
        )
        st = reply.status
        assert st.id == pod_id and st.state == api_pb2.SANDBOX_READY
        assert st.metadata.name == "web" and st.labels["app"] == "web"
        assert st.annotations["note"] == "a" and st.created_at > 0
        assert st.linux.namespaces.options.network == api_pb2.POD
        info = json.loads(reply.info["info"])
        netns = Path(info["netns"])
        assert netns.exists()
        import ipaddress

        assert ipaddress.ip_address(st.network.ip) in ipaddress.ip_network(env.subnet)
        sandbox_dir = Path(info["sandboxDir"])
        assert (sandbox_dir / "hostname").read_text() == "web-host\n"
        assert "nameserver 10.96.0.10" in (sandbox_dir / "resolv.conf").read_text()
        assert is_mount(sandbox_dir / "shm")
        cpu_cgroup = Path("/sys/fs/cgroup/cpu", env.cgroup_parent, "web")
        assert cpu_cgroup.is_dir()

        config = container_config(
            "main",
            [
                "echo hello; hostname; cat /etc/resolv.conf;"
                " cat /proc/sys/net/ipv4/ip_unprivileged_port_start;"
                " trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done"
            ],
            resources=api_pb2.LinuxContainerResources(
                memory_limit_in_bytes=64 * 1024 * 1024, cpu_quota=50000, cpu_period=100000
            ),
        )
        cid = await start_container(env, pod_id, pod, config)
        log = await wait_for_text(env.tmp / "logs" / "web" / "main.log", " 80")
        assert " stdout F hello" in log
        assert " stdout F web-host" in log
        assert " stdout F search svc.local" in log

        running = await status(env, cid)
        assert running.state == api_pb2.CONTAINER_RUNNING
        assert running.started_at >= running.created_at > 0
        assert running.image.image == IMAGE and running.image_ref
        assert running.log_path.endswith("main.log")
        memory = Path("/sys/fs/cgroup/memory", env.cgroup_parent, "web", f"crid-{cid}")
        assert (memory / "memory.limit_in_bytes").read_text().strip() == str(64 * 1024 * 1024)
        cpu = Path("/sys/fs/cgroup/cpu", env.cgroup_parent, "web", f"crid-{cid}")
        assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "50000"

        out = await exec_sync(env, cid, ["sh", "-c", "cat /etc/hostname; id -u; exit 4"])
        assert out.stdout == b"web-host\n0\n" and out.exit_code == 4

        listed = await env.stub.ListContainers(
            api_pb2.ListContainersRequest(
                filter=api_pb2.ContainerFilter(
                    pod_sandbox_id=pod_id[:10], label_selector={"c": "main"}
                )
            )
        )
        assert [c.id for c in listed.containers] == [cid]
        for pod_filter, expected in (
            (api_pb2.PodSandboxFilter(id=pod_id[:8]), [pod_id]),
            (api_pb2.PodSandboxFilter(label_selector={"app": "web"}), [pod_id]),
            (api_pb2.PodSandboxFilter(label_selector={"app": "other"}), []),
            (api_pb2.PodSandboxFilter(id="0" * 64), []),
        ):
            found = await env.stub.ListPodSandbox(api_pb2.ListPodSandboxRequest(filter=pod_filter))
            assert [p.id for p in found.items] == expected, pod_filter
        exited_only = await env.stub.ListContainers(
            api_pb2.ListContainersRequest(
                filter=api_pb2.ContainerFilter(
                    state=api_pb2.ContainerStateValue(state=api_pb2.CONTAINER_EXITED)
                )
            )
        )
        assert not exited_only.containers

        await env.stub.StopContainer(api_pb2.StopContainerRequest(container_id=cid, timeout=10))
        stopped = await status(env, cid)
        assert stopped.state == api_pb2.CONTAINER_EXITED
        assert stopped.exit_code == 0 and stopped.reason == "Completed"
        assert stopped.finished_at >= stopped.started_at
        await wait_for_text(env.tmp / "logs" / "web" / "main.log", "stdout F bye")
        await env.stub.StopContainer(api_pb2.StopContainerRequest(container_id=cid, timeout=10))

        await env.stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        await env.stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        listed_pods = await env.stub.ListPodSandbox(
            api_pb2.ListPodSandboxRequest(
                filter=api_pb2.PodSandboxFilter(
                    state=api_pb2.PodSandboxStateValue(state=api_pb2.SANDBOX_NOTREADY)
                )
            )
        )
        assert [p.id for p in listed_pods.items] == [pod_id]
        await env.stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        await env.stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        assert not netns.exists() and not sandbox_dir.exists()
        assert not cpu_cgroup.exists() and not memory.exists()
        assert not (env.tmp / "run" / "containers" / cid).exists()
        assert not list((env.tmp / "run" / "attach").iterdir())  # conmon's attach links
        assert not (await env.stub.ListPodSandbox(api_pb2.ListPodSandboxRequest())).items
        assert not (await env.stub.ListContainers(api_pb2.ListContainersRequest())).containers


async def test_errors_for_bad_unknown_and_duplicate_requests(tmp_path: Path) -> None:
    async with crid_env(tmp_path) as env:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await env.stub.RunPodSandbox(
                api_pb2.RunPodSandboxRequest(config=api_pb2.PodSandboxConfig())
            )
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "metadata" in (info.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await run_pod(env, pod_config(env, "bad", sysctls={"kernel.panic": "1"}))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        for call, request in (
            (env.stub.PodSandboxStatus, api_pb2.PodSandboxStatusRequest(pod_sandbox_id="ab" * 32)),
            (env.stub.ContainerStatus, api_pb2.ContainerStatusRequest(container_id="ab" * 32)),
            (env.stub.StartContainer, api_pb2.StartContainerRequest(container_id="cd" * 32)),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call(request)
            assert info.value.code() == grpc.StatusCode.NOT_FOUND, call
        # Stop and Remove are idempotent (api.proto): an unknown id is OK, an empty one is
        # a bad request.
        stops_and_removes = (
            (env.stub.StopContainer, api_pb2.StopContainerRequest, "container_id"),
            (env.stub.RemoveContainer, api_pb2.RemoveContainerRequest, "container_id"),
            (env.stub.StopPodSandbox, api_pb2.StopPodSandboxRequest, "pod_sandbox_id"),
            (env.stub.RemovePodSandbox, api_pb2.RemovePodSandboxRequest, "pod_sandbox_id"),
        )
        for call, message, field in stops_and_removes:
            await call(message(**{field: "ef" * 32}))
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call(message())
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, call
            assert field in (info.value.details() or "")

        pod = pod_config(env, "dup")
        pod_id = await run_pod(env, pod)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await run_pod(env, pod)
        assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert pod_id in (info.value.details() or "")

        missing = container_config("x", ["true"])
        missing.image.image = "no/such:image"
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await env.stub.CreateContainer(
                api_pb2.CreateContainerRequest(pod_sandbox_id=pod_id, config=missing)
            )
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        cid = await start_container(env, pod_id, pod, container_config("c", ["sleep 60"]))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await env.stub.CreateContainer(
                api_pb2.CreateContainerRequest(
                    pod_sandbox_id=pod_id, config=container_config("c", ["true"])
                )
            )
        assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert cid in (info.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await env.stub.CreateContainer(
                api_pb2.CreateContainerRequest(
                    pod_sandbox_id=pod_id, config=api_pb2.ContainerConfig()
                )
            )
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # A failed create leaves nothing behind: only the running container's bundle.
        bundles = sorted(p.name for p in (env.tmp / "run" / "containers").iterdir())
        assert bundles == [cid]
        assert sorted(p.name for p in (env.tmp / "run" / "attach").iterdir()) == [cid]
        # A created container that never ran is stopped and removed without a wait.
        created = await env.stub.CreateContainer(
            api_pb2.CreateContainerRequest(
                pod_sandbox_id=pod_id, config=container_config("never", ["true"])
            )
        )
        assert (await status(env, created.container_id)).state == api_pb2.CONTAINER_CREATED
        began = time.monotonic()
        await env.stub.RemoveContainer(
            api_pb2.RemoveContainerRequest(container_id=created.container_id)
        )
        assert time.monotonic() - began < 2
        assert not (env.tmp / "run" / "containers" / created.container_id).exists()
        assert not (env.tmp / "run" / "attach" / created.container_id).is_symlink()
        # Stopping or removing again, the container or its pod, is still OK.
        for _ in range(2):
            await env.stub.StopContainer(api_pb2.StopContainerRequest(container_id=cid))
        for _ in range(2):
            await env.stub.RemoveContainer(api_pb2.RemoveContainerRequest(container_id=cid))
            await env.stub.StopContainer(api_pb2.StopContainerRequest(container_id=cid))
        for _ in range(2):
            await env.stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        for _ in range(2):
            await env.stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
            await env.stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        assert not list((env.tmp / "run" / "attach").iterdir())  # conmon's attach links


async def test_exits_reasons_termination_message_and_events(tmp_path: Path) -> None:
    async with crid_env(tmp_path) as env:
        assert env.daemon.context is not None
        bus = env.daemon.context.events
        seen: list[tuple[EventKind, str]] = []

        async def collect() -> None:
            async for event in bus.subscribe():
                seen.append((event.kind, event.container_id))
                if event.kind is EventKind.CONTAINER_DELETED and event.container_id != pod_id:
                    return

        pod_id = ""
        collector = asyncio.create_task(collect())
        await asyncio.sleep(0)  # subscribed from here on
        pod = pod_config(env)
        pod_id = await run_pod(env, pod)
        failing = container_config(
            "fail",
            ["echo 'it broke' > /dev/termination-log; exit 3"],
            annotations={"io.kubernetes.container.terminationMessagePath": "/dev/termination-log"},
        )
        failed_id = await start_container(env, pod_id, pod, failing)
        ok_id = await start_container(env, pod_id, pod, container_config("ok", ["true"]))
        failed = await wait_exited(env, failed_id)
        assert (failed.exit_code, failed.reason, failed.message) == (3, "Error", "it broke\n")
        ok = await wait_exited(env, ok_id)
        assert (ok.exit_code, ok.reason) == (0, "Completed")
        oom = container_config(
            "oom",
            ["head -c 300000000 /dev/zero | tail"],
            resources=api_pb2.LinuxContainerResources(memory_limit_in_bytes=32 * 1024 * 1024),
        )
        oom_id = await start_container(env, pod_id, pod, oom)
        assert (await wait_exited(env, oom_id, 30)).reason == "OOMKilled"
        await env.stub.RemoveContainer(api_pb2.RemoveContainerRequest(container_id=ok_id))
        await asyncio.wait_for(collector, 10)
        assert (EventKind.CONTAINER_CREATED, pod_id) in seen
        for kind in EventKind:
            assert (kind, ok_id) in seen
        assert (EventKind.CONTAINER_STOPPED, failed_id) in seen


async def test_stop_timeout_then_sigkill_and_concurrent_stops(tmp_path: Path) -> None:
    async with crid_env(tmp_path) as env:
        pod = pod_config(env)
        pod_id = await run_pod(env, pod)
        # busybox sleep as PID 1 ignores SIGTERM: only SIGKILL after the timeout ends it.
        cid = await start_container(env, pod_id, pod, container_config("s", ["exec sleep 60"]))
        # StartContainer returns as runc init is about to exec: a SIGTERM before the exec
        # meets the Go runtime's handler, not sleep, so wait for sleep to run.
        await wait_for_comm(env, cid, "sleep")
        began = time.monotonic()
        first = env.stub.StopContainer(api_pb2.StopContainerRequest(container_id=cid, timeout=2))
        await asyncio.sleep(0.3)
        second = env.stub.StopContainer(api_pb2.StopContainerRequest(container_id=cid, timeout=1))
        await asyncio.gather(first, second)
        took = time.monotonic() - began
        assert 1.0 < took < 5.0
        stopped = await status(env, cid)
        assert stopped.exit_code == 137 and stopped.reason == "Error"
        quick = await start_container(env, pod_id, pod, container_config("q", ["exec sleep 60"]))
        began = time.monotonic()
        await env.stub.StopContainer(api_pb2.StopContainerRequest(container_id=quick, timeout=0))
        assert time.monotonic() - began < 1.5
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await env.stub.StartContainer(api_pb2.StartContainerRequest(container_id=quick))
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_exec_sync_timeout_kills_the_command(tmp_path: Path) -> None:
    async with crid_env(tmp_path) as env:
        pod = pod_config(env)
        pod_id = await run_pod(env, pod)
        cid = await start_container(env, pod_id, pod, container_config("s", ["top"]))
        began = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await exec_sync(env, cid, ["sh", "-c", "echo started; exec sleep 30"], timeout=1)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "timed out" in (info.value.details() or "")
        assert time.monotonic() - began < 4
        ps = await exec_sync(env, cid, ["ps", "-o", "args"])
        assert b"sleep 30" not in ps.stdout
        # What the timed-out command started dies with it (critest's execSync timeout).
        with pytest.raises(grpc.aio.AioRpcError):
            await exec_sync(env, cid, ["sh", "-c", "sleep 4321 & sleep 4322 & wait"], timeout=1)
        # The killed children were orphaned to the container's init (`top`, which reaps
        # nothing), so they stay as zombies: nothing of theirs runs any more.
        ps = await exec_sync(env, cid, ["ps", "-o", "stat,args"])
        alive = [
            line
            for line in ps.stdout.decode().splitlines()[1:]
            if "sleep" in line and not line.split()[0].startswith("Z")
        ]
        assert not alive, alive
        big = await exec_sync(env, cid, ["sh", "-c", "head -c 100000 /dev/zero; echo err >&2"])
        assert len(big.stdout) == 100000 and big.stderr == b"err\n"


async def test_pods_reach_each_other_and_host_port(tmp_path: Path) -> None:
    async with crid_env(tmp_path) as env:
        port = 20000 + secrets.randbelow(20000)
        server_pod = pod_config(
            env,
            "server",
            ports=[api_pb2.PortMapping(container_port=8080, host_port=port, host_ip="127.0.0.1")],
        )
        server_id = await run_pod(env, server_pod)
        await start_container(
            env,
            server_id,
            server_pod,
            container_config(
                "httpd", ["echo pod-hello > /tmp/index.html; exec busybox httpd -f -p 8080 -h /tmp"]
            ),
        )
        server_ip = (
            await env.stub.PodSandboxStatus(
                api_pb2.PodSandboxStatusRequest(pod_sandbox_id=server_id)
            )
        ).status.network.ip
        client_pod = pod_config(env, "client")
        client_id = await run_pod(env, client_pod)
        client = await start_container(
            env, client_id, client_pod, container_config("c", ["sleep 60"])
        )
        deadline = time.monotonic() + 10
        while True:
            out = await exec_sync(
                env, client, ["wget", "-q", "-O", "-", f"http://{server_ip}:8080/index.html"]
            )
            if out.exit_code == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert out.stdout == b"pod-hello\n", out.stderr

        def fetch() -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := conn.recv(4096):
                    data += chunk
                return data

        assert b"pod-hello" in await asyncio.to_thread(fetch)


async def test_host_network_pod(tmp_path: Path) -> None:
    async with crid_env(tmp_path) as env:
        pod = pod_config(env, "hostnet")
        pod.linux.security_context.namespace_options.network = api_pb2.NODE
        pod.linux.security_context.namespace_options.ipc = api_pb2.NODE
        pod_id = await run_pod(env, pod)
        st = (
            await env.stub.PodSandboxStatus(api_pb2.PodSandboxStatusRequest(pod_sandbox_id=pod_id))
        ).status
        assert st.network.ip == ""
        assert st.linux.namespaces.options.network == api_pb2.NODE
        cid = await start_container(env, pod_id, pod, container_config("c", ["sleep 60"]))
        out = await exec_sync(env, cid, ["readlink", "/proc/1/ns/net"])
        host_net = os.readlink("/proc/self/ns/net").encode()
        assert out.stdout.strip() == host_net


async def test_shared_pid_namespace_is_held_by_the_pod(tmp_path: Path) -> None:
    async with crid_env(tmp_path) as env:
        pod = pod_config(env, "shared", pid=api_pb2.POD)
        pod_id = await run_pod(env, pod)

        def shared(name: str, script: str) -> api_pb2.ContainerConfig:
            return container_config(name, [script], pid=api_pb2.POD)

        first = await start_container(env, pod_id, pod, shared("a", "exit 0"))
        await wait_exited(env, first)
        # The first container is gone; the namespace still takes new containers.
        await start_container(env, pod_id, pod, shared("b", "sleep 61"))
        third = await start_container(env, pod_id, pod, shared("c", "sleep 62"))
        ps = (await exec_sync(env, third, ["ps", "-o", "pid,args"])).stdout.decode()
        assert "sleep 61" in ps and "sleep 62" in ps
        pid1 = [line for line in ps.splitlines() if line.split()[0] == "1"]
        assert len(pid1) == 1 and "catatonit -P" in pid1[0]
        reply = await env.stub.PodSandboxStatus(
            api_pb2.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=True)
        )
        pin = Path(json.loads(reply.info["info"])["namespaces"]["pid"])
        inode = pin.stat().st_ino
        await env.stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        assert not pin.exists()
        await asyncio.sleep(0.2)
        left = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if (entry / "ns" / "pid").stat().st_ino == inode:
                        left.append(entry.name)
        assert not left

        private = pod_config(env, "private")
        private_id = await run_pod(env, private)
        cid = await start_container(env, private_id, private, container_config("p", ["sleep 63"]))
        ps = (await exec_sync(env, cid, ["ps", "-o", "pid,args"])).stdout.decode()
        assert "catatonit" not in ps and "sleep 63" in ps


async def test_exec_timeout_in_a_shared_pid_namespace_leaves_nothing(tmp_path: Path) -> None:
    """critest's execSync-timeout spec: its pod shares one PID namespace (mode POD)."""
    async with crid_env(tmp_path) as env:
        pod = pod_config(env, "critest")
        pod.linux.security_context.namespace_options.pid = api_pb2.POD
        pod_id = await run_pod(env, pod)
        config = container_config("top", ["top"])
        config.linux.security_context.namespace_options.pid = api_pb2.POD
        cid = await start_container(env, pod_id, pod, config)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await exec_sync(env, cid, ["sleep", "4321"], timeout=1)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # critest runs `sh -c "pgrep sleep || true"`; Debian's busybox has `pidof`, the
        # same match by name. PID 1 of the namespace (the holder) must not match either.
        found = await exec_sync(env, cid, ["sh", "-c", "pidof sleep || true"])
        assert found.stdout == b"" and found.stderr == b""
        # PID 1 reaps orphans: a double-forked child leaves no zombie once it ends.
        await exec_sync(env, cid, ["sh", "-c", "(sleep 0.2 &) ; exit 0"])
        await asyncio.sleep(1.0)
        stats = (await exec_sync(env, cid, ["ps", "-o", "stat,args"])).stdout.decode()
        assert not [line for line in stats.splitlines()[1:] if line.split()[0].startswith("Z")]


async def test_short_image_names_resolve_as_pulls_resolve_them(tmp_path: Path) -> None:
    registries = tmp_path / "registries.conf"
    registries.write_text('unqualified-search-registries = ["registry.crid.test"]\n')
    image_table = f'[crid.image]\nregistries_conf = "{registries}"\n'
    async with crid_env(tmp_path, image_table) as env:
        assert env.daemon.context is not None
        await asyncio.to_thread(
            load_built,
            env.daemon.context.store.store,
            BUILT,
            ["registry.crid.test/tools/box:1.0"],
        )
        pod = pod_config(env, "short")
        pod_id = await run_pod(env, pod)
        for name, found in (("tools/box:1.0", True), ("tools/other:1.0", False)):
            config = container_config(f"c{int(found)}", ["true"])
            config.image.image = name
            request = api_pb2.CreateContainerRequest(
                pod_sandbox_id=pod_id, config=config, sandbox_config=pod
            )
            if found:
                reply = await env.stub.CreateContainer(request)
                status = await env.stub.ContainerStatus(
                    api_pb2.ContainerStatusRequest(container_id=reply.container_id)
                )
                assert status.status.image_ref.startswith("sha256:") or "@sha256:" in (
                    status.status.image_ref
                )
            else:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await env.stub.CreateContainer(request)
                assert info.value.code() == grpc.StatusCode.NOT_FOUND
                assert "tools/other:1.0" in (info.value.details() or "")
