"""List and Status RPC latency with a populated registry: 100 pods and 100 containers.

The records are written to a fresh state database before ``crid serve`` starts (as after a
restart); every container really runs (a busybox ``sleep`` created by crid's own conmon
wrapper in crid's run directories, with crid's runtime root, in a cgroup of its own under
a pod cgroup), so crid's start-up recovery finds its conmon alive, keeps it RUNNING, and
the stats RPCs read live cgroup files. (A container without conmon is one nobody
monitors: crid kills it at start-up and marks it EXITED, as containerd does when a shim
dies; the bench checks that every container is still running.) Then each RPC is called over
the unix socket and p50/p99 reported (target <= 1 ms). Stats are served from crid's
sampler (refreshed every second in a worker thread while they are asked for). RPCs this
build does not implement are listed as such. With ``--go`` the same RPCs are then timed
again from a Go gRPC client, as the kubelet and critest call them (``_go_client.py``).
With ``--floor`` both clients are also timed against a bare grpc.aio server answering
the bytes crid answered (``_grpc_floor.py``): crid's own share of an RPC is its time
less the floor's. Run as root from the checkout:
``uv run python bench/crid/list_status.py [--calls N] [--pods N] [--go] [--floor]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from _go_client import build_go_client, run_go_client
from _grpc_floor import capture, floor_server

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.cgroups import Hierarchies, container_cgroup_path
from crid.oci import Conmon, ConmonOptions, CreatedContainer, OCIRuntime
from crid.state import (
    Container,
    ContainerMeta,
    ContainerState,
    PodMeta,
    Registry,
    Sandbox,
    SandboxState,
)

RUNC = shutil.which("runc") or "/usr/sbin/runc"
CONMON = shutil.which("conmon") or "/usr/bin/conmon"
PARENT = f"/crid-bench-{secrets.token_hex(3)}"


def daemon_config(root: Path) -> Path:
    """A crid.toml keeping all of crid's files under ``root`` (and its directories)."""
    (root / "net.d").mkdir()
    (root / "root").mkdir()
    config = root / "crid.toml"
    config.write_text(
        f'[crid]\nroot = "{root}/root"\nrunroot = "{root}/run"\n'
        f'[crid.api]\nlisten = "{root}/run/crid.sock"\n'
        f'[crid.network]\nnetwork_dir = "{root}/net.d"\n'
        f'[crid.nri]\nsocket_path = "{root}/run/nri.sock"\n'
    )
    return config


def bundle_template(root: Path) -> dict[str, object]:
    """A runc spec running busybox sleep from a read-only rootfs shared by all containers."""
    rootfs = root / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
    template = root / "template"
    template.mkdir()
    subprocess.run(["runc", "spec"], cwd=template, check=True)
    spec: dict[str, object] = json.loads((template / "config.json").read_text())
    spec["root"] = {"path": str(rootfs), "readonly": True}
    process = spec["process"]
    assert isinstance(process, dict)
    process["terminal"] = False
    process["args"] = ["/bin/busybox", "sleep", "3600"]
    return spec


async def run_container(
    conmon: Conmon, run: Path, spec: dict[str, object], cid: str, cgroup: str
) -> CreatedContainer:
    """Create one container under conmon (as crid does, in crid's run directories, so
    crid's recovery finds its conmon alive and keeps it RUNNING) and start it."""
    bundle = run / "containers" / cid
    bundle.mkdir(parents=True)
    linux = dict(spec["linux"])  # type: ignore[call-overload]
    linux["cgroupsPath"] = cgroup
    (bundle / "config.json").write_text(json.dumps({**spec, "linux": linux}))
    created = await conmon.create(
        ConmonOptions(
            container_id=cid,
            name=cid,
            bundle=bundle,
            log_path=run / "logs" / f"{cid}.log",
            exit_dir=run / "exits",
            socket_dir=run / "attach",
        )
    )
    await conmon.runtime.start(cid)
    return created


def remove_containers(runc_root: Path) -> None:
    if not runc_root.is_dir():
        return
    for entry in runc_root.iterdir():
        subprocess.run(
            ["runc", "--root", str(runc_root), "delete", "--force", entry.name],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


async def populate(
    db: Path, pods: int, hierarchies: Hierarchies, root: Path, runc_root: Path
) -> tuple[str, str]:
    """Write ``pods`` sandboxes with one running container each; returns one id of each."""
    registry = Registry.open(db)
    spec = bundle_template(root)
    run = root / "run"
    for name in ("exits", "attach", "logs"):
        (run / name).mkdir(parents=True, exist_ok=True)
    runtime = OCIRuntime(name="runc", binary=Path(RUNC), root=runc_root)
    conmon = Conmon(binary=Path(CONMON), runtime=runtime)
    try:
        for i in range(pods):
            sandbox_id, container_id = secrets.token_hex(32), secrets.token_hex(32)
            parent = f"{PARENT}/pod{i}"
            hierarchies.create(parent)
            cgroup = container_cgroup_path(parent, container_id, "cgroupfs")
            created = await run_container(conmon, run, spec, container_id, cgroup)
            meta = PodMeta(name=f"pod{i}", uid=f"uid-{i}", namespace="bench")
            await registry.save_sandbox(
                Sandbox(
                    id=sandbox_id,
                    name=f"k8s_pod{i}_bench_uid-{i}_0",
                    meta=meta,
                    state=SandboxState.READY,
                    created_at=time.time_ns(),
                    labels={"app": f"app{i % 10}", "io.kubernetes.pod.name": f"pod{i}"},
                    annotations={"kubernetes.io/config.seen": "2024-01-01T00:00:00Z"},
                    ips=(f"10.88.{i // 250}.{i % 250 + 2}",),
                    cgroup_parent=parent,
                )
            )
            await registry.save_container(
                Container(
                    id=container_id,
                    name=f"k8s_c_pod{i}_bench_uid-{i}_0",
                    sandbox_id=sandbox_id,
                    meta=ContainerMeta(name="c"),
                    state=ContainerState.RUNNING,
                    created_at=time.time_ns(),
                    started_at=time.time_ns(),
                    image="docker.io/library/busybox:latest",
                    image_ref="sha256:" + "ab" * 32,
                    labels={"io.kubernetes.container.name": "c"},
                    log_path=f"/var/log/pods/bench/c{i}.log",
                    cgroup_path=cgroup,
                    pid=created.pid,
                    conmon_pid=created.conmon_pid,
                )
            )
        return sandbox_id, container_id
    finally:
        registry.close()


def timed(call: Callable[[], object], n: int, warm_up: int = 20) -> list[float] | str:
    """``n`` timed calls after ``warm_up`` untimed ones (the channel's flow-control window
    grows over the first large answers, which would bias whichever RPC runs first)."""
    samples = []
    for i in range(warm_up + n):
        start = time.perf_counter()
        try:
            call()
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.UNIMPLEMENTED:  # type: ignore[attr-defined]
                return "not implemented in this build"
            raise
        if i >= warm_up:
            samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument(
        "--only", action="append", default=[], help="time only RPCs whose row starts so"
    )
    parser.add_argument(
        "--dump", action="store_true", help="print one pod's PodSandboxMetrics and the sizes"
    )
    parser.add_argument(
        "--go", action="store_true", help="time the RPCs from a Go client too (Debian's Go)"
    )
    parser.add_argument(
        "--floor", action="store_true", help="time a bare grpc.aio server with crid's answers"
    )
    args = parser.parse_args()
    columns: dict[str, dict[str, list[float] | str]] = {}
    hierarchies = Hierarchies.detect()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = daemon_config(root)
        runc_root = root / "run" / "runtimes" / "runc"  # crid's default for handler runc
        go_client = build_go_client(root / "go") if args.go else None
        try:
            sandbox_id, container_id = asyncio.run(
                populate(root / "root" / "state.db", args.pods, hierarchies, root, runc_root)
            )
            proc = subprocess.Popen(
                [sys.executable, "-m", "crid", "serve", "--config", str(config)],
                stderr=subprocess.DEVNULL,
            )
            sock = root / "run" / "crid.sock"
            try:
                while not sock.exists():
                    time.sleep(0.005)
                columns["crid, Python client"] = run_calls(
                    sock, args.calls, sandbox_id, container_id, args.dump, args.only
                )
                if go_client is not None:
                    columns["crid, Go client"] = dict(
                        run_go_client(go_client, sock, args.calls, sandbox_id, container_id)
                    )
                if args.floor:
                    with grpc.insecure_channel(f"unix://{sock}") as channel:
                        answers = capture(channel, sandbox_id, container_id)
            finally:
                proc.terminate()
                proc.wait(timeout=20)
            if args.floor:
                with floor_server(root / "floor", answers) as floor:
                    columns["floor, Python client"] = run_calls(
                        floor, args.calls, sandbox_id, container_id, only=args.only, quiet=True
                    )
                    if go_client is not None:
                        columns["floor, Go client"] = dict(
                            run_go_client(go_client, floor, args.calls, sandbox_id, container_id)
                        )
        finally:
            remove_containers(runc_root)
            hierarchies.remove(PARENT)

    print(f"{args.pods} pods, {args.pods} running containers, {args.calls} calls each")
    print_table(columns)
    return 0


def print_table(columns: dict[str, dict[str, list[float] | str]]) -> None:
    """p50 per RPC and column (p99 of the first column too), in ms; target <= 1 ms."""
    names: list[str] = []
    for column in columns.values():
        names += [n for n in column if n not in names]
    first = next(iter(columns))
    heads = "".join(f"{c:>22}" for c in columns)
    print(f"{'p50 (ms)':<26}{heads}{'p99 of the first':>18}")
    for name in names:
        cells = []
        for column in columns.values():
            samples = column.get(name, "")
            cells.append(
                f"{statistics.median(samples):22.3f}"
                if isinstance(samples, list)
                else f"{samples or '-':>22}"
            )
        samples = columns[first].get(name, "")
        p99 = statistics.quantiles(samples, n=100)[98] if isinstance(samples, list) else None
        print(f"{name:<26}{''.join(cells)}{'' if p99 is None else f'{p99:18.3f}'}")


def metrics_size(stub: api_pb2_grpc.RuntimeServiceStub, dump: bool) -> None:
    """The metrics answer's size per pod and per series; ``dump``: one pod's as text."""
    answer = stub.ListPodSandboxMetrics(api_pb2.ListPodSandboxMetricsRequest(), timeout=10)
    pods = answer.pod_metrics
    series = sum(len(p.metrics) + sum(len(c.metrics) for c in p.container_metrics) for p in pods)
    size = answer.ByteSize()
    print(f"ListPodSandboxMetrics: {size} bytes, {len(pods)} pods, {series} series")
    if pods:
        print(f"  {size / len(pods):.0f} bytes a pod, {size / max(series, 1):.0f} a series")
        if dump:
            print(pods[0])


def check_and_size(stub: api_pb2_grpc.RuntimeServiceStub, dump: bool) -> None:
    """Fail unless every container has live stats; print the answers' sizes."""
    stats = stub.ListContainerStats(api_pb2.ListContainerStatsRequest(), timeout=10).stats
    running = [s for s in stats if s.memory.HasField("working_set_bytes")]
    print(f"{len(running)} containers running with live stats")
    if len(running) != len(stats) or not stats:
        raise SystemExit(f"only {len(running)} of {len(stats)} containers have live stats")
    metrics_size(stub, dump)
    answers = {
        "ListPodSandbox": stub.ListPodSandbox(api_pb2.ListPodSandboxRequest(), timeout=10),
        "ListContainers": stub.ListContainers(api_pb2.ListContainersRequest(), timeout=10),
        "ListContainerStats": stub.ListContainerStats(
            api_pb2.ListContainerStatsRequest(), timeout=10
        ),
        "ListPodSandboxStats": stub.ListPodSandboxStats(
            api_pb2.ListPodSandboxStatsRequest(), timeout=10
        ),
    }
    print("answer sizes: " + ", ".join(f"{k} {v.ByteSize()} B" for k, v in answers.items()))


def run_calls(
    sock: Path,
    n: int,
    sandbox_id: str,
    container_id: str,
    dump: bool = False,
    only: list[str] | None = None,
    quiet: bool = False,
) -> dict[str, list[float] | str]:
    """Each RPC's per-call ms; ``quiet``: no checks or sizes (for the floor server)."""
    with grpc.insecure_channel(f"unix://{sock}") as channel:
        stub = api_pb2_grpc.RuntimeServiceStub(channel)
        for _ in range(50):  # warm up the channel
            stub.Version(api_pb2.VersionRequest(), timeout=10)
        if not quiet:
            check_and_size(stub, dump)
        # Metrics first: from then on the sampler takes detailed samples (more files, every
        # process's open files), which the other RPCs below must not feel.
        # The same RPC with the answer left as bytes: the round trip without the client's parse.
        raw_metrics = channel.unary_unary(
            "/runtime.v1.RuntimeService/ListPodSandboxMetrics",
            request_serializer=api_pb2.ListPodSandboxMetricsRequest.SerializeToString,
            response_deserializer=None,
        )
        raw_pod_stats = channel.unary_unary(
            "/runtime.v1.RuntimeService/ListPodSandboxStats",
            request_serializer=api_pb2.ListPodSandboxStatsRequest.SerializeToString,
            response_deserializer=None,
        )
        calls: dict[str, Callable[[], object]] = {
            "Version": lambda: stub.Version(api_pb2.VersionRequest(), timeout=10),
            "Status": lambda: stub.Status(api_pb2.StatusRequest(), timeout=10),
            "ListPodSandboxMetrics": lambda: stub.ListPodSandboxMetrics(
                api_pb2.ListPodSandboxMetricsRequest(), timeout=10
            ),
            " (answer as bytes)": lambda: raw_metrics(
                api_pb2.ListPodSandboxMetricsRequest(), timeout=10
            ),
            "ListMetricDescriptors": lambda: stub.ListMetricDescriptors(
                api_pb2.ListMetricDescriptorsRequest(), timeout=10
            ),
            "ListPodSandbox": lambda: stub.ListPodSandbox(
                api_pb2.ListPodSandboxRequest(), timeout=10
            ),
            "ListContainers": lambda: stub.ListContainers(
                api_pb2.ListContainersRequest(), timeout=10
            ),
            "PodSandboxStatus": lambda: stub.PodSandboxStatus(
                api_pb2.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id), timeout=10
            ),
            "ContainerStatus": lambda: stub.ContainerStatus(
                api_pb2.ContainerStatusRequest(container_id=container_id), timeout=10
            ),
            "ListContainerStats": lambda: stub.ListContainerStats(
                api_pb2.ListContainerStatsRequest(), timeout=10
            ),
            "ListPodSandboxStats": lambda: stub.ListPodSandboxStats(
                api_pb2.ListPodSandboxStatsRequest(), timeout=10
            ),
            " (stats answer as bytes)": lambda: raw_pod_stats(
                api_pb2.ListPodSandboxStatsRequest(), timeout=10
            ),
            "ContainerStats (one)": lambda: stub.ContainerStats(
                api_pb2.ContainerStatsRequest(container_id=container_id), timeout=10
            ),
            "StreamPodSandboxes": lambda: list(
                stub.StreamPodSandboxes(api_pb2.StreamPodSandboxesRequest(), timeout=10)
            ),
            "StreamContainers": lambda: list(
                stub.StreamContainers(api_pb2.StreamContainersRequest(), timeout=10)
            ),
        }
        return {
            name: timed(call, n)
            for name, call in calls.items()
            if not only or any(name.strip().startswith(o) for o in only)
        }


if __name__ == "__main__":
    sys.exit(main())
