"""Shared set-up of the crid benchmarks, and the no-daemon floors they compare against.

:func:`bench_daemon` starts an in-process crid (temporary state, a CNI bridge network:
bridge + host-local + portmap, never masquerading) with the busybox image loaded, and a
gRPC stub on its socket. The floors do by hand, with no daemon and no Python between the
steps beyond what a minimal shell script would need, what crid does for a pod:

- :class:`ContainerFloor`: conmon→runc create (the sync and start pipes, as crid drives
  them) on a bundle whose config.json is the one crid generated for the same container;
- :class:`PodFloor`: the whole pod. Run: ``unshare --net=F --ipc=F --uts=F hostname``
  (pinned namespaces), then every plugin of the same conflist for ADD (what libcni does:
  each gets the previous result). Create: an overlayfs root filesystem (mkdir, mount(2)
  on the image's layer directories), config.json, conmon→runc create. Start: ``runc
  start``. Teardown: ``runc kill``, wait for conmon's exit file, ``runc delete``, CNI DEL
  in reverse, unpin, unmount and remove the root filesystem, remove the pod cgroup.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.cgroups import Hierarchies
from crid.config import load_config
from crid.context import Context
from crid.oci import Conmon, ConmonOptions, OCIRuntime
from crid.server import Daemon
from ociimage.testing import busybox_image
from ocinet.testing import (
    bridge_network,
    delete_link,
    random_bridge_name,
    random_test_subnet,
    remove_iptables_rules_mentioning,
)
from ocistore.testing import load_built

IMAGE = "crid-bench/busybox:latest"
CNI_DIRS = ("/opt/cni/bin", "/usr/lib/cni")
_PATH = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
_libc = ctypes.CDLL(None, use_errno=True)


def pod_config(tmp: Path, parent: str, index: int) -> api_pb2.PodSandboxConfig:
    """A pod as the kubelet sends it by default (a PID namespace per container)."""
    pod = api_pb2.PodSandboxConfig(
        metadata=api_pb2.PodSandboxMetadata(name=f"bench-{index}", uid=f"u{index}", namespace="b"),
        hostname="bench",
        log_directory=str(tmp / "logs" / str(index)),
        linux=api_pb2.LinuxPodSandboxConfig(cgroup_parent=f"/{parent}/pod{index}"),
    )
    pod.linux.security_context.namespace_options.pid = api_pb2.CONTAINER
    return pod


def container_config(attempt: int = 0) -> api_pb2.ContainerConfig:
    """A busybox ``sleep 600``."""
    config = api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name="sleep", attempt=attempt),
        image=api_pb2.ImageSpec(image=IMAGE),
        command=["sleep", "600"],
        log_path=f"sleep_{attempt}.log",
    )
    config.linux.security_context.namespace_options.pid = api_pb2.CONTAINER
    return config


def summary(samples: list[float]) -> tuple[float, float, float]:
    """Median, p90 and max."""
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return statistics.median(ordered), p90, ordered[-1]


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Bench:
    """A running in-process crid and what the floors need to do the same by hand."""

    daemon: Daemon
    ctx: Context
    stub: api_pb2_grpc.RuntimeServiceStub
    tmp: Path
    parent: str
    conflist: dict[str, Any]


@contextlib.asynccontextmanager
async def bench_daemon(runtime_lines: str = "", tables: str = "") -> AsyncIterator[Bench]:
    """crid on a temporary socket, the image loaded; everything removed afterwards.

    ``runtime_lines``: more keys of ``[crid.runtime]``; ``tables``: more TOML tables."""
    import asyncio

    parent = f"crid-bench-{secrets.token_hex(3)}"
    name, bridge = f"crid-bench-{secrets.token_hex(3)}", random_bridge_name()
    with tempfile.TemporaryDirectory(prefix="crid-bench-") as directory:
        tmp = Path(directory)
        (tmp / "net.d").mkdir()
        conf = bridge_network(
            name=name, bridge=bridge, subnet=random_test_subnet(), data_dir=tmp / "ipam"
        )
        (tmp / "net.d" / "10-bench.conflist").write_text(json.dumps(conf))
        config_file = tmp / "crid.toml"
        config_file.write_text(
            f'[crid]\nroot = "{tmp}/root"\nrunroot = "{tmp}/run"\n'
            f'[crid.api]\nlisten = "{tmp}/run/crid.sock"\n'
            f'[crid.network]\nnetwork_dir = "{tmp}/net.d"\n'
            f'[crid.runtime]\nnamespaces_dir = "{tmp}/run/ns"\n'
            f'container_exits_dir = "{tmp}/run/exits"\n{runtime_lines}'
            f'[crid.nri]\nsocket_path = "{tmp}/run/nri.sock"\n{tables}'
        )
        daemon = Daemon(load_config(config_file))
        await daemon.start()
        try:
            ctx = daemon.context
            assert ctx is not None
            await asyncio.to_thread(load_built, ctx.store.store, busybox_image(), [IMAGE])
            async with grpc.aio.insecure_channel(f"unix://{daemon.socket_path}") as channel:
                stub = api_pb2_grpc.RuntimeServiceStub(channel)
                yield Bench(
                    daemon=daemon, ctx=ctx, stub=stub, tmp=tmp, parent=parent, conflist=conf
                )
        finally:
            await daemon.stop(grace=0)
            delete_link(bridge)
            remove_iptables_rules_mentioning(name)
            Hierarchies.detect().remove(parent)


async def template_config(
    bench: Bench, pod_id: str, pod: api_pb2.PodSandboxConfig
) -> tuple[dict[str, Any], str]:
    """The config.json crid generates for the benchmark's container in ``pod``, and the
    overlay lower directories of its root filesystem (the container is removed again)."""
    import asyncio

    reply = await bench.stub.CreateContainer(
        api_pb2.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=container_config(), sandbox_config=pod
        )
    )
    record = bench.ctx.registry.container(reply.container_id)
    config = json.loads(await asyncio.to_thread(Path(record.bundle, "config.json").read_text))
    lowers = await asyncio.to_thread(overlay_lowers, Path(config["root"]["path"]))
    await bench.stub.RemoveContainer(
        api_pb2.RemoveContainerRequest(container_id=reply.container_id)
    )
    return config, lowers


def overlay_lowers(rootfs: Path) -> str:
    """The real lower directories of the overlay mounted at ``rootfs`` (colon-separated)."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] != str(rootfs):
            continue
        options = fields[fields.index("-") + 3].split(",")
        lower = next(o for o in options if o.startswith("lowerdir="))[len("lowerdir=") :]
        return ":".join(os.path.realpath(p) for p in lower.split(":"))
    raise RuntimeError(f"no overlay mounted at {rootfs}")


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount_overlay(lowers: str, base: Path) -> Path:
    """mkdir upper, work and merged under ``base`` and mount the overlay; the rootfs."""
    for name in ("upper", "work", "merged"):
        (base / name).mkdir(parents=True)
    data = f"lowerdir={lowers},upperdir={base}/upper,workdir={base}/work"
    merged = base / "merged"
    _check(_libc.mount(b"overlay", str(merged).encode(), b"overlay", 0, data.encode()), "mount")
    return merged


def unmount(target: Path) -> None:
    _check(_libc.umount2(str(target).encode(), 0), f"umount {target}")


@dataclass
class ContainerFloor:
    """conmon→runc create with no daemon, on bundles crid's own config.json describes."""

    conmon_binary: Path
    runtime_binary: Path
    work: Path
    runtime: OCIRuntime = field(init=False)
    conmon: Conmon = field(init=False)

    def __post_init__(self) -> None:
        self.runtime = OCIRuntime(name="runc", binary=self.runtime_binary, root=self.work / "runc")
        self.conmon = Conmon(binary=self.conmon_binary, runtime=self.runtime)

    @classmethod
    def of(cls, ctx: Context, work: Path) -> ContainerFloor:
        handler = ctx.handler()
        return cls(
            conmon_binary=handler.conmon.binary, runtime_binary=handler.runtime.binary, work=work
        )

    def options(self, cid: str) -> ConmonOptions:
        return ConmonOptions(
            container_id=cid,
            name=cid,
            bundle=self.work / "bundles" / cid,
            log_path=self.work / "logs" / f"{cid}.log",
            exit_dir=self.work / "exits",
            socket_dir=self.work / "attach",
        )

    def write_bundle(
        self, options: ConmonOptions, template: dict[str, Any], rootfs: Path, cgroup: str,
        namespaces: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        config = json.loads(json.dumps(template))
        config["root"]["path"] = str(rootfs)
        config["linux"]["cgroupsPath"] = cgroup
        for ns in config["linux"]["namespaces"]:
            if namespaces and ns["type"] in namespaces:
                ns["path"] = namespaces[ns["type"]]
        options.bundle.mkdir(parents=True)
        (options.bundle / "config.json").write_text(json.dumps(config, separators=(",", ":")))

    def create(self, options: ConmonOptions) -> None:
        """conmon's create as a bare program would run it."""
        for directory in (options.exit_dir, options.socket_dir, options.log_path.parent):
            directory.mkdir(parents=True, exist_ok=True)
        sync_read, sync_write = os.pipe()
        start_read, start_write = os.pipe()
        env = {"PATH": _PATH, "_OCI_SYNCPIPE": str(sync_write), "_OCI_STARTPIPE": str(start_read)}
        proc = subprocess.Popen(
            self.conmon.argv(options),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=options.bundle,
            env=env,
            pass_fds=(sync_write, start_read),
            start_new_session=True,
        )
        os.close(sync_write)
        os.close(start_read)
        os.write(start_write, b"\0")
        os.close(start_write)
        with os.fdopen(sync_read, "rb") as reply:
            message = reply.readline()
        proc.wait()
        if json.loads(message)["data"] <= 0:
            raise RuntimeError(f"floor create failed: {message!r}")

    def runc(self, *args: str) -> None:
        subprocess.run(
            [str(self.runtime.binary), f"--root={self.runtime.root}", *args],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def wait_exit(self, options: ConmonOptions, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not options.exit_file.exists() and time.monotonic() < deadline:
            time.sleep(0.001)

    def prepare(self, template: dict[str, Any], lowers: str, cgroup_parent: str) -> ConmonOptions:
        """A root filesystem and bundle for one container, ready for :meth:`create`."""
        cid = secrets.token_hex(32)
        rootfs = mount_overlay(lowers, self.work / "rootfs" / cid)
        options = self.options(cid)
        self.write_bundle(options, template, rootfs, f"{cgroup_parent}/floor-{cid[:12]}")
        return options

    def remove(self, options: ConmonOptions) -> None:
        """Delete the container and what :meth:`prepare` made."""
        self.runc("delete", "--force", options.container_id)
        self.wait_exit(options)
        shutil.rmtree(options.bundle, ignore_errors=True)
        base = self.work / "rootfs" / options.container_id
        if base.is_dir():
            unmount(base / "merged")
            shutil.rmtree(base)


@dataclass
class CniFloor:
    """Each plugin of a conflist run in turn, as libcni does, without any cache."""

    conflist: dict[str, Any]

    def _plugin(self, kind: str) -> str:
        for directory in CNI_DIRS:
            path = Path(directory, kind)
            if path.is_file():
                return str(path)
        raise FileNotFoundError(kind)

    def _run(
        self, command: str, plugin: dict[str, Any], prev: object, cid: str, netns: str, args: str
    ) -> bytes:
        conf = dict(plugin, name=self.conflist["name"], cniVersion=self.conflist["cniVersion"])
        if prev is not None:
            conf["prevResult"] = prev
        env = {
            "PATH": _PATH, "CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": netns,
            "CNI_IFNAME": "eth0", "CNI_ARGS": args, "CNI_PATH": ":".join(CNI_DIRS),
        }  # fmt: skip
        done = subprocess.run(
            [self._plugin(plugin["type"])], input=json.dumps(conf).encode(), env=env,
            capture_output=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{plugin['type']} {command}: {done.stdout!r} {done.stderr!r}")
        return done.stdout

    def add(self, cid: str, netns: str, args: str) -> object:
        prev: object = None
        for plugin in self.conflist["plugins"]:
            prev = json.loads(self._run("ADD", plugin, prev, cid, netns, args))
        return prev

    def delete(self, cid: str, netns: str, args: str, prev: object) -> None:
        for plugin in reversed(self.conflist["plugins"]):
            self._run("DEL", plugin, prev, cid, netns, args)


@dataclass
class FloorPod:
    """What one floor pod made, for its teardown."""

    index: int
    pins: dict[str, Path]
    cni_args: str
    result: object = None
    rootfs_base: Path | None = None
    options: ConmonOptions | None = None


@dataclass
class PodFloor:
    """A whole pod by hand: see the module docstring."""

    container: ContainerFloor
    cni: CniFloor
    template: dict[str, Any]
    lowers: str
    work: Path
    parent: str
    cgroup_roots: list[Path] = field(default_factory=lambda: Hierarchies.detect().roots())

    def run(self, index: int) -> FloorPod:
        """Pinned net, IPC and UTS namespaces (hostname set), then CNI ADD."""
        pins = {kind: self.work / f"{kind}ns" / f"pod{index}" for kind in ("net", "ipc", "uts")}
        for path in pins.values():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        subprocess.run(
            ["unshare", f"--net={pins['net']}", f"--ipc={pins['ipc']}", f"--uts={pins['uts']}",
             "hostname", "bench"],
            check=True, env={"PATH": _PATH},
        )  # fmt: skip
        cni_args = f"IgnoreUnknown=1;K8S_POD_NAMESPACE=b;K8S_POD_NAME=floor-{index}"
        pod = FloorPod(index=index, pins=pins, cni_args=cni_args)
        pod.result = self.cni.add(f"floor-{index}", str(pins["net"]), cni_args)
        return pod

    def create(self, pod: FloorPod) -> None:
        """An overlay rootfs, config.json joining the pod's namespaces, conmon→runc create."""
        cid = secrets.token_hex(32)
        pod.rootfs_base = self.work / "rootfs" / cid
        rootfs = mount_overlay(self.lowers, pod.rootfs_base)
        pod.options = self.container.options(cid)
        namespaces = {"network": str(pod.pins["net"]), "ipc": str(pod.pins["ipc"]),
                      "uts": str(pod.pins["uts"])}  # fmt: skip
        cgroup = f"/{self.parent}/floor{pod.index}/{cid[:12]}"
        self.container.write_bundle(pod.options, self.template, rootfs, cgroup, namespaces)
        self.container.create(pod.options)

    def start(self, pod: FloorPod) -> None:
        assert pod.options is not None
        self.container.runc("start", pod.options.container_id)

    def teardown(self, pod: FloorPod) -> None:
        """Kill and delete the container, CNI DEL, unpin, drop the rootfs and cgroup."""
        assert pod.options is not None and pod.rootfs_base is not None
        cid = pod.options.container_id
        self.container.runc("kill", cid, "KILL")
        self.container.wait_exit(pod.options)
        self.container.runc("delete", cid)
        self.cni.delete(f"floor-{pod.index}", str(pod.pins["net"]), pod.cni_args, pod.result)
        for path in pod.pins.values():
            unmount(path)
            path.unlink()
        unmount(pod.rootfs_base / "merged")
        shutil.rmtree(pod.rootfs_base)
        shutil.rmtree(pod.options.bundle)
        for root in self.cgroup_roots:
            with contextlib.suppress(FileNotFoundError):
                (root / self.parent / f"floor{pod.index}").rmdir()
