"""One CNI ADD+DEL cycle through ocinet vs the bridge plugin called directly from the shell.

The floor is a POSIX shell loop that feeds the same configuration to
/usr/lib/cni/bridge (with host-local IPAM) for ADD then DEL, so it pays only the plugin's
own work plus two fork/execs. ocinet adds: building the injected config, an asyncio
subprocess per plugin run, result parsing and version conversion, and the on-disk result
cache (written on ADD, read for prevResult and removed on DEL).

Needs root. Usage: uv run python bench/ocinet/cni_cycle.py [--cycles N] [--block K] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ocinet import CNI, RuntimeConf, create_namespace, parse_network_config
from ocinet import testing as nettest

BRIDGE = "/usr/lib/cni/bridge"


def _shell_loop(conf: Path, netns: str, cycles: int, cni_args: str) -> float:
    """Seconds for ``cycles`` ADD+DEL cycles of the bridge plugin in one sh process."""
    env = (
        f"CNI_CONTAINERID=bench-sh CNI_NETNS={shlex.quote(netns)} CNI_IFNAME=eth0 "
        f"CNI_PATH=/usr/lib/cni CNI_ARGS={shlex.quote(cni_args)}"
    )
    script = (
        f"i=0; while [ $i -lt {cycles} ]; do "
        f"CNI_COMMAND=ADD {env} {BRIDGE} < {shlex.quote(str(conf))} > /dev/null || exit 1; "
        f"CNI_COMMAND=DEL {env} {BRIDGE} < {shlex.quote(str(conf))} > /dev/null || exit 1; "
        "i=$((i+1)); done"
    )
    started = time.perf_counter()
    subprocess.run(["sh", "-c", script], check=True)
    return time.perf_counter() - started


async def _ocinet_cycles(
    cni: CNI, net_conf: dict[str, object], netns: str, cycles: int
) -> list[float]:
    network = parse_network_config(net_conf)
    rt = RuntimeConf.for_pod(container_id="bench-ocinet", netns=netns)
    times = []
    for _ in range(cycles):
        started = time.perf_counter()
        await cni.add(network, rt)
        await cni.delete(network, rt)
        times.append(time.perf_counter() - started)
    return times


def _sync_cycles(cni: CNI, net_conf: dict[str, object], netns: str, cycles: int) -> list[float]:
    network = parse_network_config(net_conf)
    rt = RuntimeConf.for_pod(container_id="bench-sync", netns=netns)
    times = []
    for _ in range(cycles):
        started = time.perf_counter()
        cni.add_sync(network, rt)
        cni.delete_sync(network, rt)
        times.append(time.perf_counter() - started)
    return times


def _pin_cycles(base: Path, cycles: int) -> list[float]:
    times = []
    for i in range(cycles):
        started = time.perf_counter()
        create_namespace(base / f"pin{i}").remove()
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--block", type=int, default=5, help="cycles per interleaved block")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("cni_cycle: needs root (network namespaces, bridges)", file=sys.stderr)
        return 2
    if not os.access(BRIDGE, os.X_OK):
        print(f"cni_cycle: {BRIDGE} not found", file=sys.stderr)
        return 2

    bridge = nettest.random_bridge_name("crb")
    subnet = nettest.random_test_subnet()
    name = f"bench-{bridge}"
    with tempfile.TemporaryDirectory(prefix="ocinet-bench-") as tmp_name:
        tmp = Path(tmp_name)
        conf_list = nettest.bridge_network(
            name=name, bridge=bridge, subnet=subnet, data_dir=tmp / "ipam", portmap=False
        )
        # The shell gets the very plugin object ocinet sends (name, cniVersion injected).
        single = dict(conf_list["plugins"][0])  # type: ignore[index]
        single.update(name=name, cniVersion=conf_list["cniVersion"])
        conf_file = tmp / "bridge.json"
        conf_file.write_text(json.dumps(single))
        ns = create_namespace(tmp / "netns", "net")
        cni = CNI(plugin_dirs=["/usr/lib/cni"], cache_dir=tmp / "cache")
        rt_args = RuntimeConf.for_pod(container_id="bench-sh", netns=str(ns.path)).cni_args()
        try:
            # Warm up page cache and the bridge itself (first ADD creates it).
            _shell_loop(conf_file, str(ns.path), 2, rt_args)
            asyncio.run(_ocinet_cycles(cni, conf_list, str(ns.path), 2))
            # Interleave small blocks of each method so that load from other processes on
            # the machine hits all of them alike.
            shell_blocks: list[float] = []
            async_times: list[float] = []
            sync_times: list[float] = []
            for _ in range(max(1, args.cycles // args.block)):
                total = _shell_loop(conf_file, str(ns.path), args.block, rt_args)
                shell_blocks.append(total / args.block)
                async_times += asyncio.run(_ocinet_cycles(cni, conf_list, str(ns.path), args.block))
                sync_times += _sync_cycles(cni, conf_list, str(ns.path), args.block)
            pin_times = _pin_cycles(tmp / "pins", args.cycles)
        finally:
            ns.remove()
            nettest.delete_link(bridge)

    cycles = len(async_times)
    floor_mean = statistics.mean(shell_blocks) * 1000
    floor_median = statistics.median(shell_blocks) * 1000
    rows = [
        ("bridge plugin from sh (floor)", floor_mean, floor_median),
        (
            "ocinet CNI.add+delete (async)",
            statistics.mean(async_times) * 1000,
            statistics.median(async_times) * 1000,
        ),
        (
            "ocinet add_sync+delete_sync",
            statistics.mean(sync_times) * 1000,
            statistics.median(sync_times) * 1000,
        ),
    ]
    print(f"CNI ADD+DEL cycle, bridge + host-local, {cycles} cycles each, interleaved")
    print(f"{'method':<32} {'mean ms':>9} {'median ms':>10} {'ratio':>7}")
    for label, mean, median in rows:
        print(f"{label:<32} {mean:9.2f} {median:10.2f} {median / floor_median:7.2f}")
    print("(ratio = median / floor median; the floor's median is over blocks of cycles)")
    pin_ms = statistics.mean(pin_times) * 1000
    print(f"(netns pin+remove via ocinet: {pin_ms:.2f} ms mean; not part of the ratio)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "cycles": cycles,
                    "floor_block_mean_ms": [t * 1000 for t in shell_blocks],
                    "ocinet_async_ms": [t * 1000 for t in async_times],
                    "ocinet_sync_ms": [t * 1000 for t in sync_times],
                    "netns_pin_remove_ms": [t * 1000 for t in pin_times],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
