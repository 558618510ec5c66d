"""crid's resident memory through the CRI benchmark cycle and a long pod churn.

Starts ``crid serve`` as a subprocess (its own temp dirs, a CNI bridge network on a
random 10.x subnet, a loopback ``docker-registry`` holding the busybox image that
``ociimage.testing`` builds), then prints its RSS

* idle (after a Version and a Status call),
* after cycle 1 and after cycle 2, where a cycle is what critest's benchmark mode does:
  20 PullImage/RemoveImage rounds of busybox, then 50 pods (Run, Status, Stop, Remove)
  and 50 containers in one pod (Create, Start, Status, Stop, Remove), with List calls,
* each minute of ``--minutes`` of churn over 20 live pods (each with a container; the
  oldest is replaced in turn while the kubelet's periodic List/Stats/Metrics calls run),
  and once the churn's pods are removed,
* after every pod is gone (and the image removed).

What must hold (issue 14): cycle 2, the churn and the end within 10% of cycle 1, and
memory going back down from the churn's peak when its pods are gone.
``--trace`` runs crid under tracemalloc and prints the allocation sites that grew
between phases; ``--heap`` what pymalloc and glibc malloc hold at each phase (objects,
free space, what a trim would give back), the object types and the modules that came
since idle; ``--smaps`` where the resident pages are; ``--interval`` paces the churn
(one pod replaced every so many seconds at most, so an hour-long run does not take the
machine's cores); ``--skip RPC`` leaves a housekeeping call out, to see what it costs.
Run as root from the checkout:
``uv run python bench/crid/churn_memory.py [--minutes 60 --interval 0.5] [--trace]``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.cgroups import Hierarchies
from ociimage.testing import LocalRegistry, busybox_image, push_image
from ocinet.testing import (
    bridge_network,
    delete_link,
    random_bridge_name,
    random_test_subnet,
    remove_iptables_rules_mentioning,
)

# crid under tracemalloc: SIGUSR2 writes a snapshot to $CRID_BENCH_SNAPSHOT.
TRACED = """
import os, signal, sys, tracemalloc
tracemalloc.start(12)
def dump(*_):
    import gc
    gc.collect()
    tracemalloc.take_snapshot().dump(os.environ["CRID_BENCH_SNAPSHOT"])
    open(os.environ["CRID_BENCH_SNAPSHOT"] + ".done", "w").close()
signal.signal(signal.SIGUSR2, dump)
sys.argv = ["crid", *sys.argv[1:]]
from crid.entry import main
main()
"""


# crid with a heap report: SIGUSR2 writes pymalloc's and glibc malloc's accounts and the
# largest object counts by type to $CRID_BENCH_SNAPSHOT (JSON).
HEAP = """
import gc, json, os, signal, sys, tempfile
def dump(*_):
    gc.collect()
    with tempfile.TemporaryFile("w+") as out:
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        pymalloc = {}
        for line in out:
            key, eq, value = line.rpartition("=")
            if eq and key.startswith("#"):
                pymalloc[key.strip("# ").strip()] = int(value.replace(",", "").strip() or 0)
    from crid import heap
    used, free = heap.usage()
    import ctypes
    sqlite = ctypes.CDLL("libsqlite3.so.0")
    sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    sqlite_used = sqlite.sqlite3_memory_used()
    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    before = rss()
    heap.trim()
    trimmed = before - rss()
    counts = {}
    for obj in gc.get_objects():
        counts[type(obj).__name__] = counts.get(type(obj).__name__, 0) + 1
    report = {"pymalloc": pymalloc, "malloc_used": used, "malloc_free": free, "trimmed": trimmed,
              "sqlite_used": sqlite_used,
              "objects": sorted(counts.items(), key=lambda kv: -kv[1])[:12],
              "gc_objects": sum(counts.values()), "modules": sorted(sys.modules)}
    path = os.environ["CRID_BENCH_SNAPSHOT"]
    with open(path, "w") as fh:
        json.dump(report, fh)
    open(path + ".done", "w").close()
signal.signal(signal.SIGUSR2, dump)
sys.argv = ["crid", *sys.argv[1:]]
from crid.entry import main
main()
"""


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS, its anonymous and file-backed parts, and the thread count."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            found[key] = int(value.split()[0]) / 1024
        elif key == "Threads":
            found[key] = int(value)
    return found


def breakdown(pid: int) -> str:
    """Where the resident pages are: the brk heap, anonymous mappings by kind (told by
    their size: pymalloc's 1 MiB arenas, 8 MiB thread stacks, the rest glibc's arenas
    and large blocks), and the largest file-backed ones."""
    groups: dict[str, int] = {}
    name = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            path = fields[5] if len(fields) > 5 else ""
            if path == "[heap]":
                name = "anon: brk heap"
            elif path.startswith("["):
                name = f"anon: {path}"
            elif path:
                name = "file: " + Path(path).name.split(".cpython")[0][:28]
            else:
                size = end - start
                if size == 1 << 20:
                    name = "anon: pymalloc arenas"
                elif size in (8 << 20, 8 << 20 | 4096):
                    name = "anon: thread stacks"
                else:
                    name = "anon: malloc arenas, mmaps"
        elif fields[0] == "Rss:":
            groups[name] = groups.get(name, 0) + int(fields[1])
    top = sorted(groups.items(), key=lambda item: -item[1])[:9]
    return ", ".join(f"{key} {kib / 1024:.1f}" for key, kib in top)


class Crid:
    """``crid serve`` in a subprocess with a bridge network and an insecure registry."""

    def __init__(
        self, work: Path, registry_host: str, *, trace: bool, heap: bool, env: dict[str, str]
    ):
        self.work = work
        self.parent = f"crid-bench-{secrets.token_hex(3)}"
        self.network = f"crid-bench-{secrets.token_hex(3)}"
        self.bridge = random_bridge_name()
        (work / "net.d").mkdir(parents=True)
        conf = bridge_network(
            name=self.network,
            bridge=self.bridge,
            subnet=random_test_subnet(),
            data_dir=work / "ipam",
        )
        (work / "net.d" / "10-bench.conflist").write_text(json.dumps(conf))
        (work / "registries.conf").write_text(
            f'[[registry]]\nlocation = "{registry_host}"\ninsecure = true\n'
        )
        (work / "policy.json").write_text(
            json.dumps({"default": [{"type": "insecureAcceptAnything"}]})
        )
        config = work / "crid.toml"
        config.write_text(
            f'[crid]\nroot = "{work}/root"\nrunroot = "{work}/run"\n'
            f'[crid.api]\nlisten = "{work}/run/crid.sock"\n'
            f'[crid.network]\nnetwork_dir = "{work}/net.d"\n'
            f'[crid.runtime]\nnamespaces_dir = "{work}/run/ns"\n'
            f'container_exits_dir = "{work}/run/exits"\n'
            f'[crid.nri]\nsocket_path = "{work}/run/nri.sock"\n'
            f'plugin_dir = "{work}/nri-plugins"\n'
            f'[crid.image]\nregistries_conf = "{work}/registries.conf"\n'
            f'registries_conf_dir = "{work}/registries.conf.d"\n'
            f'signature_policy = "{work}/policy.json"\n'
            f'registries_d = "{work}/registries.d"\n'
        )
        self.snapshot = work / "snapshot"
        environment = {**os.environ, **env, "CRID_BENCH_SNAPSHOT": str(self.snapshot)}
        command = [sys.executable, "-m", "crid", "serve", "--config", str(config)]
        if trace or heap:
            wrapper = TRACED if trace else HEAP
            command = [sys.executable, "-c", wrapper, "serve", "--config", str(config)]
        self.log = (work / "crid.log").open("wb")
        self.proc = subprocess.Popen(command, stderr=self.log, env=environment)
        self.socket = work / "run" / "crid.sock"
        deadline = time.monotonic() + 120
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise SystemExit(f"crid did not start; see {work / 'crid.log'}")
            time.sleep(0.01)

    def _dump(self) -> None:
        done = Path(f"{self.snapshot}.done")
        done.unlink(missing_ok=True)
        self.proc.send_signal(signal.SIGUSR2)
        while not done.exists():
            time.sleep(0.05)

    def take_snapshot(self) -> tracemalloc.Snapshot:
        self._dump()
        return tracemalloc.Snapshot.load(str(self.snapshot))

    def heap_report(self) -> dict[str, Any]:
        self._dump()
        report: dict[str, Any] = json.loads(self.snapshot.read_text())
        return report

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        delete_link(self.bridge)
        remove_iptables_rules_mentioning(self.network)
        Hierarchies.detect().remove(self.parent)


class Kubelet:
    """The CRI calls of critest's benchmarks and of a kubelet's housekeeping."""

    def __init__(
        self, channel: grpc.Channel, crid: Crid, image: str, skip: frozenset[str] = frozenset()
    ) -> None:
        self.runtime = api_pb2_grpc.RuntimeServiceStub(channel)
        self.images = api_pb2_grpc.ImageServiceStub(channel)
        self.crid = crid
        self.image = image
        self.skip = skip  # housekeeping RPCs left out, to tell what each one costs
        self.serial = 0

    def pod_config(self) -> api_pb2.PodSandboxConfig:
        self.serial += 1
        n = self.serial
        pod = api_pb2.PodSandboxConfig(
            metadata=api_pb2.PodSandboxMetadata(name=f"bench-{n}", uid=f"uid-{n}", namespace="b"),
            hostname=f"bench-{n}",
            log_directory=str(self.crid.work / "logs" / str(n)),
            labels={"app": "bench", "serial": str(n)},
            annotations={"bench": "churn"},
            linux=api_pb2.LinuxPodSandboxConfig(cgroup_parent=f"/{self.crid.parent}/pod{n}"),
        )
        pod.linux.security_context.namespace_options.pid = api_pb2.CONTAINER
        return pod

    def container_config(self, name: str) -> api_pb2.ContainerConfig:
        config = api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name=name),
            image=api_pb2.ImageSpec(image=self.image),
            command=["sleep", "3600"],
            log_path=f"{name}.log",
            labels={"app": "bench"},
        )
        config.linux.security_context.namespace_options.pid = api_pb2.CONTAINER
        return config

    def run_pod(self, pod: api_pb2.PodSandboxConfig) -> str:
        reply = self.runtime.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=pod), timeout=60)
        return str(reply.pod_sandbox_id)

    def remove_pod(self, pod_id: str) -> None:
        self.runtime.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        self.runtime.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))

    def start_container(self, pod_id: str, pod: api_pb2.PodSandboxConfig, name: str) -> str:
        created = self.runtime.CreateContainer(
            api_pb2.CreateContainerRequest(
                pod_sandbox_id=pod_id, config=self.container_config(name), sandbox_config=pod
            ),
            timeout=60,
        )
        container_id = str(created.container_id)
        self.runtime.StartContainer(api_pb2.StartContainerRequest(container_id=container_id))
        return container_id

    def pull(self) -> None:
        self.images.PullImage(
            api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=self.image)), timeout=120
        )

    def remove_image(self) -> None:
        self.images.RemoveImage(
            api_pb2.RemoveImageRequest(image=api_pb2.ImageSpec(image=self.image)), timeout=120
        )

    def housekeeping(self) -> None:
        """What the kubelet's PLEG, stats provider and image manager poll for."""
        calls: list[tuple[str, Callable[[], object]]] = [
            (
                "ListPodSandbox",
                lambda: self.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest()),
            ),
            (
                "ListContainers",
                lambda: self.runtime.ListContainers(api_pb2.ListContainersRequest()),
            ),
            (
                "ListContainerStats",
                lambda: self.runtime.ListContainerStats(api_pb2.ListContainerStatsRequest()),
            ),
            (
                "ListPodSandboxStats",
                lambda: self.runtime.ListPodSandboxStats(api_pb2.ListPodSandboxStatsRequest()),
            ),
            (
                "ListPodSandboxMetrics",
                lambda: self.runtime.ListPodSandboxMetrics(api_pb2.ListPodSandboxMetricsRequest()),
            ),
            ("ListImages", lambda: self.images.ListImages(api_pb2.ListImagesRequest())),
            ("ImageFsInfo", lambda: self.images.ImageFsInfo(api_pb2.ImageFsInfoRequest())),
            ("Status", lambda: self.runtime.Status(api_pb2.StatusRequest(verbose=True))),
        ]
        for name, call in calls:
            if name not in self.skip:
                call()

    def benchmark_cycle(self, pods: int, containers: int, pulls: int) -> None:
        """critest's benchmark mode: pulls, pod lifecycles, container lifecycles."""
        for _ in range(pulls):
            self.pull()
            self.images.ImageStatus(
                api_pb2.ImageStatusRequest(image=api_pb2.ImageSpec(image=self.image))
            )
            self.remove_image()
        self.pull()
        for _ in range(pods):
            pod_id = self.run_pod(self.pod_config())
            self.runtime.PodSandboxStatus(api_pb2.PodSandboxStatusRequest(pod_sandbox_id=pod_id))
            self.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest())
            self.remove_pod(pod_id)
        pod = self.pod_config()
        pod_id = self.run_pod(pod)
        for n in range(containers):
            container_id = self.start_container(pod_id, pod, f"c{n}")
            self.runtime.ContainerStatus(
                api_pb2.ContainerStatusRequest(container_id=container_id, verbose=True)
            )
            self.runtime.ListContainers(api_pb2.ListContainersRequest())
            self.runtime.ContainerStats(api_pb2.ContainerStatsRequest(container_id=container_id))
            self.runtime.StopContainer(
                api_pb2.StopContainerRequest(container_id=container_id, timeout=0)
            )
            self.runtime.RemoveContainer(api_pb2.RemoveContainerRequest(container_id=container_id))
        self.housekeeping()
        self.remove_pod(pod_id)

    def churn(
        self, minutes: float, width: int, interval: float, live_sample: Callable[[], object]
    ) -> tuple[int, list[float]]:
        """Keep *width* pods alive, replacing the oldest in turn (one every *interval*
        seconds at most, so a long run churns steadily without taking the machine's
        cores), then remove them all: the number replaced and the RSS (MiB) sampled
        each minute meanwhile; *live_sample* runs once before the pods are removed."""
        live: list[str] = []
        for _ in range(width):
            pod = self.pod_config()
            pod_id = self.run_pod(pod)
            self.start_container(pod_id, pod, "app")
            live.append(pod_id)
        replaced, samples = 0, []
        started = time.monotonic()
        deadline = started + minutes * 60
        report = started + 60
        while time.monotonic() < deadline:
            if time.monotonic() >= report:  # the trend: does it level off?
                report += 60
                memory = memory_mib(self.crid.proc.pid)
                samples.append(memory["VmRSS"])
                print(
                    f"    churn {len(samples):3d} min: {replaced:6d} pods replaced, {width} live:"
                    f" RSS {memory['VmRSS']:6.1f} MiB  anon {memory['RssAnon']:6.1f}"
                    f"  threads {int(memory['Threads']):3d}",
                    flush=True,
                )
            step = time.monotonic()
            self.remove_pod(live.pop(0))
            pod = self.pod_config()
            pod_id = self.run_pod(pod)
            self.start_container(pod_id, pod, "app")
            live.append(pod_id)
            self.housekeeping()
            replaced += 1
            time.sleep(max(0.0, interval - (time.monotonic() - step)))
        samples.append(memory_mib(self.crid.proc.pid)["VmRSS"])
        live_sample()
        for pod_id in live:
            self.remove_pod(pod_id)
        return replaced, samples


def remove_every_pod(crid: Crid) -> None:
    try:
        with grpc.insecure_channel(f"unix://{crid.socket}") as channel:
            runtime = api_pb2_grpc.RuntimeServiceStub(channel)
            for pod in runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest(), timeout=10).items:
                runtime.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod.id))
                runtime.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod.id))
    except grpc.RpcError as err:
        print(f"cleanup: {err}", file=sys.stderr)


def settle(crid: Crid, seconds: float) -> dict[str, float]:
    time.sleep(seconds)
    return memory_mib(crid.proc.pid)


def show(label: str, memory: dict[str, float], idle: dict[str, float] | None) -> None:
    growth = "" if idle is None else f"   (+{memory['VmRSS'] - idle['VmRSS']:.1f} over idle)"
    print(
        f"{label:<28} RSS {memory['VmRSS']:6.1f} MiB  anon {memory['RssAnon']:6.1f}"
        f"  file {memory['RssFile']:5.1f}  threads {int(memory['Threads']):3d}{growth}",
        flush=True,
    )


def show_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, top: int) -> None:
    stats = after.compare_to(before, "traceback")
    total = sum(s.size_diff for s in stats)
    print(f"    tracemalloc: {total / 2**20:+.2f} MiB traced; largest growth:")
    for stat in stats[:top]:
        if stat.size_diff <= 0:
            break
        frames = [f for f in stat.traceback if "importlib" not in f.filename][-3:]
        where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(frames))
        print(f"      {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+6d}  {where}")


def show_heap(report: dict[str, Any], idle: dict[str, Any] | None) -> None:
    """pymalloc's arenas and what fills them, glibc's heap, live objects (and vs idle)."""
    pm = report["pymalloc"]
    mib = 2**20
    arenas = pm.get("arenas allocated current", 0)
    line = (
        f"    pymalloc: {arenas} arenas of 1 MiB,"
        f" objects {pm.get('bytes in allocated blocks', 0) / mib:.1f} MiB,"
        f" free in pools {pm.get('bytes in available blocks', 0) / mib:.1f},"
        f" free pools {pm.get('bytes in free pools', 0) / mib:.1f}"
        f" | malloc: used {int(report['malloc_used']) / mib:.1f} MiB,"
        f" free {int(report['malloc_free']) / mib:.1f}"
        f" (a trim now gives back {int(report['trimmed']) / mib:.1f})"
        f" | sqlite {int(report.get('sqlite_used', 0)) / mib:.2f} MiB"
        f" | {report['gc_objects']} gc objects"
    )
    print(line)
    if idle is not None:
        before = dict(idle["objects"])
        grew = [
            f"{name} {count - before.get(name, 0):+d}"
            for name, count in report["objects"]
            if count - before.get(name, 0) > 200
        ]
        if grew:
            print(f"    grew since idle: {', '.join(grew)}")
        loaded = sorted(set(report["modules"]) - set(idle["modules"]))
        if loaded:
            print(f"    {len(loaded)} modules loaded since idle: {' '.join(loaded)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=0.0, help="churn of --width pods")
    parser.add_argument("--width", type=int, default=20)
    parser.add_argument(
        "--interval", type=float, default=0.0, help="seconds between pod replacements (at least)"
    )
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--pulls", type=int, default=20)
    parser.add_argument("--settle", type=float, default=8.0, help="seconds before each sample")
    parser.add_argument("--smaps", action="store_true", help="where the pages are (MiB)")
    # One report at a time: both come back through the same signal and file.
    report = parser.add_mutually_exclusive_group()
    report.add_argument("--trace", action="store_true", help="tracemalloc growth per phase")
    report.add_argument(
        "--heap", action="store_true", help="pymalloc and malloc accounts, objects by type"
    )
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for crid")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        help="a housekeeping RPC to leave out (e.g. ListPodSandboxMetrics), to see its cost",
    )
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    work = Path(tempfile.mkdtemp(prefix="crid-churn-bench-"))
    with LocalRegistry(workdir=work / "registry") as registry:
        pushed = push_image(registry, busybox_image(repository="bench/busybox"))
        crid = Crid(work / "crid", registry.host, trace=args.trace, heap=args.heap, env=env)
        snapshots: list[tracemalloc.Snapshot] = []
        heaps: list[dict[str, Any]] = []

        def sample(label: str, idle: dict[str, float] | None) -> dict[str, float]:
            memory = settle(crid, args.settle)
            show(label, memory, idle)
            if args.smaps:
                print(f"    {breakdown(crid.proc.pid)}")
            if args.heap:
                report = crid.heap_report()
                show_heap(report, heaps[0] if heaps else None)
                heaps.append(report)
            if args.trace:
                snapshots.append(crid.take_snapshot())
                if len(snapshots) > 1:
                    show_growth(snapshots[-2], snapshots[-1], 15)
            return memory

        try:
            with grpc.insecure_channel(f"unix://{crid.socket}") as channel:
                kubelet = Kubelet(channel, crid, pushed.reference, frozenset(args.skip))
                kubelet.runtime.Version(api_pb2.VersionRequest())
                kubelet.runtime.Status(api_pb2.StatusRequest())
                idle = sample("idle", None)
                started = time.perf_counter()
                kubelet.benchmark_cycle(args.pods, args.containers, args.pulls)
                print(f"  (cycle 1 took {time.perf_counter() - started:.1f} s)")
                first = sample("after cycle 1", idle)
                kubelet.benchmark_cycle(args.pods, args.containers, args.pulls)
                second = sample("after cycle 2", idle)
                churned, live_peak = None, 0.0
                if args.minutes > 0:
                    replaced, samples = kubelet.churn(
                        args.minutes,
                        args.width,
                        args.interval,
                        lambda: sample(f"{args.width} pods live", idle),
                    )
                    live_peak = max(samples)
                    print(
                        f"  (churn: {replaced} pods replaced; {args.width} live, RSS over"
                        f" {len(samples)} samples: min {min(samples):.1f}, max {live_peak:.1f},"
                        f" last {samples[-1]:.1f} MiB)"
                    )
                    churned = sample(f"after {args.minutes:g} min churn", idle)
                kubelet.remove_image()
                gone = sample("after all pods gone", idle)
        finally:
            remove_every_pod(crid)  # after a failure: leave no mounts or namespaces behind
            crid.stop()
    limit = first["VmRSS"] * 1.10
    verdicts = [("cycle 2 within 10% of cycle 1", second["VmRSS"] <= limit)]
    if churned is not None:
        verdicts.append(("after the churn: within 10% of cycle 1", churned["VmRSS"] <= limit))
        verdicts.append(
            (
                f"during the churn ({args.width} pods live): within 10% of cycle 1",
                live_peak <= limit,
            )
        )
        verdicts.append(("pods gone: below the churn's peak", gone["VmRSS"] < live_peak))
    verdicts.append(("all pods gone: within 10% of cycle 1", gone["VmRSS"] <= limit))
    for text, ok in verdicts:
        print(f"{'ok  ' if ok else 'FAIL'} {text}")
    subprocess.run(["rm", "-rf", str(work)], check=False)
    return 0  # a benchmark reports; `make bench` goes on to the next script


if __name__ == "__main__":
    sys.exit(main())
