"""Helpers for tests and benchmarks that drive real CNI plugins on a shared host.

They make collisions with other users of the machine unlikely (random bridge names and
10.x test subnets that no route covers yet) and clean up what plugins leave behind: the
bridge (bridge DEL keeps it) and portmap's per-container iptables chains.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shlex
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "FakePlugins",
    "bridge_network",
    "delete_link",
    "iptables_rules_mentioning",
    "link_exists",
    "random_bridge_name",
    "random_test_subnet",
    "remove_iptables_rules_mentioning",
]


def random_bridge_name(prefix: str = "crt") -> str:
    """A bridge name unlikely to exist, within the kernel's 15-character limit."""
    name = prefix + secrets.token_hex(4)
    if len(name) > 15:
        raise ValueError(f"bridge name {name!r} is longer than 15 characters")
    return name


def _routed_networks() -> list[ipaddress.IPv4Network]:
    nets: list[ipaddress.IPv4Network] = []
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return nets
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        dest = ipaddress.IPv4Address(int(fields[1], 16).to_bytes(4, "little"))
        mask = ipaddress.IPv4Address(int(fields[7], 16).to_bytes(4, "little"))
        if int(mask) == 0:
            continue  # the default route overlaps everything; ignore it
        nets.append(ipaddress.IPv4Network(f"{dest}/{mask}", strict=False))
    return nets


def random_test_subnet(prefixlen: int = 24, attempts: int = 64) -> ipaddress.IPv4Network:
    """A random subnet of 10.128.0.0/9 that no existing route overlaps."""
    taken = _routed_networks()
    pool = ipaddress.IPv4Network("10.128.0.0/9")
    count = 2 ** (prefixlen - pool.prefixlen)
    for _ in range(attempts):
        index = secrets.randbelow(count)
        base = int(pool.network_address) + index * 2 ** (32 - prefixlen)
        subnet = ipaddress.IPv4Network((base, prefixlen))
        if not any(subnet.overlaps(net) for net in taken):
            return subnet
    raise RuntimeError("no free 10.x test subnet found")


def bridge_network(
    *,
    name: str,
    bridge: str,
    subnet: ipaddress.IPv4Network | str,
    data_dir: str | os.PathLike[str],
    cni_version: str = "1.0.0",
    portmap: bool = True,
    loopback: bool = False,
) -> dict[str, Any]:
    """A network list for tests: bridge + host-local (+ portmap), never masquerading."""
    plugins: list[dict[str, Any]] = [
        {
            "type": "bridge",
            "bridge": bridge,
            "isGateway": True,
            "ipMasq": False,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": str(subnet)}]],
                "dataDir": os.fspath(data_dir),
            },
        }
    ]
    if portmap:
        plugins.append({"type": "portmap", "capabilities": {"portMappings": True}, "snat": True})
    if loopback:
        plugins.insert(0, {"type": "loopback"})
    return {"cniVersion": cni_version, "name": name, "plugins": plugins}


def link_exists(name: str) -> bool:
    """Whether a network interface ``name`` exists in this network namespace."""
    return Path("/sys/class/net", name).exists()


def delete_link(name: str) -> None:
    """Delete a link (e.g. a test bridge) if it exists."""
    if link_exists(name):
        subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)


def _save(table: str) -> list[str]:
    proc = subprocess.run(
        ["iptables-save", "-t", table], check=False, capture_output=True, text=True
    )
    return proc.stdout.splitlines()


def iptables_rules_mentioning(text: str, tables: Iterable[str] = ("nat", "filter")) -> list[str]:
    """The ``iptables-save`` lines (rules and chains) of ``tables`` that contain ``text``."""
    return [line for table in tables for line in _save(table) if text in line]


def remove_iptables_rules_mentioning(text: str, tables: Iterable[str] = ("nat", "filter")) -> None:
    """Delete every rule containing ``text`` and the chains those rules jump to.

    Used in teardown for portmap's per-container ``CNI-DN-*`` chains, whose jump rules
    carry the network name and container id in a comment.
    """
    for table in tables:
        targets: set[str] = set()
        for line in _save(table):
            if not line.startswith("-A ") or text not in line:
                continue
            args = line.split()
            if "-j" in args:
                target = args[args.index("-j") + 1]
                # Shared CNI-HOSTPORT-* chains serve every portmap user on the host.
                if target.startswith("CNI-") and not target.startswith("CNI-HOSTPORT-"):
                    targets.add(target)
            # iptables-save quotes comments; shlex keeps each one a single argument.
            delete = ["iptables", "-t", table, "-D", *shlex.split(line)[1:]]
            subprocess.run(delete, check=False, capture_output=True)
        for chain in targets:
            subprocess.run(["iptables", "-t", table, "-F", chain], check=False, capture_output=True)
            subprocess.run(["iptables", "-t", table, "-X", chain], check=False, capture_output=True)


_FAKE_PLUGIN = r'''#!{python} -S
"""A CNI plugin for tests: logs what it was given and answers as its config says."""
import json, os, subprocess, sys, time

stdin = sys.stdin.read()
conf = json.loads(stdin)
fake = conf.get("fake", {{}})
command = os.environ.get("CNI_COMMAND", "")
record = {{
    "plugin": os.path.basename(sys.argv[0]),
    "command": command,
    "env": dict(os.environ),
    "conf": conf,
    "pid": os.getpid(),
}}
if fake.get("spawn_child"):
    child = subprocess.Popen(["sleep", "60"])
    record["child"] = child.pid
log_path = fake.get("log") or os.path.join(os.path.dirname(sys.argv[0]), "calls.jsonl")
with open(log_path, "a") as log:
    log.write(json.dumps(record) + "\n")
if command == "VERSION":
    versions = fake.get("versions", ["0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    print(json.dumps({{"cniVersion": "1.0.0", "supportedVersions": versions}}))
    sys.exit(0)
if fake.get("sleep"):
    time.sleep(fake["sleep"])
if fake.get("finished"):
    open(fake["finished"], "a").close()
failing = fake.get("fail_on", [])
if command in failing:
    if fake.get("error"):
        print(json.dumps(fake["error"]))
    if fake.get("stderr"):
        sys.stderr.write(fake["stderr"])
    if fake.get("stdout_raw"):
        sys.stdout.write(fake["stdout_raw"])
    sys.exit(fake.get("exit", 1))
if command == "ADD":
    if "result" in fake:
        out = fake["result"]
    elif "prevResult" in conf:
        out = conf["prevResult"]
    else:
        out = {{"cniVersion": conf["cniVersion"],
               "interfaces": [{{"name": os.environ["CNI_IFNAME"],
                                "sandbox": os.environ["CNI_NETNS"]}}],
               "ips": [{{"address": fake.get("ip", "10.99.0.2/24"),
                        "gateway": "10.99.0.1", "interface": 0}}]}}
    print(json.dumps(out))
'''


class FakePlugins:
    """A directory of scriptable fake CNI plugins that record every run.

    Each plugin object carries a ``fake`` block (see :meth:`plugin`) saying how to behave:
    ``result``, ``ip``, ``sleep``, ``finished`` (a file made once the sleep is over),
    ``spawn_child``, ``fail_on`` (commands) with ``error``,
    ``stderr``, ``stdout_raw`` and ``exit``, and ``versions`` for VERSION.
    """

    NAMES = ("fake-a", "fake-b", "fake-c")

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log = self.directory / "calls.jsonl"
        script = _FAKE_PLUGIN.format(python=sys.executable)
        for name in self.NAMES:
            path = self.directory / name
            path.write_text(script)
            path.chmod(0o755)

    def plugin(self, plugin_type: str = "fake-a", **fake: Any) -> dict[str, Any]:
        """A plugin object for a network list; ``fake`` scripts its behaviour."""
        extra = fake.pop("extra", {})
        return {"type": plugin_type, "fake": {"log": str(self.log), **fake}, **extra}

    def network(
        self, *plugins: dict[str, Any], name: str = "fakenet", version: str = "1.0.0", **top: Any
    ) -> dict[str, Any]:
        """A network list of ``plugins``."""
        return {"cniVersion": version, "name": name, "plugins": list(plugins), **top}

    def calls(self) -> list[dict[str, Any]]:
        """Every recorded run, in order."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def clear(self) -> None:
        """Forget the recorded runs."""
        self.log.unlink(missing_ok=True)
