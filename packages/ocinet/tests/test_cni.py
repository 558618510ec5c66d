"""The CNI runner against scriptable fake plugins: env, stdin injection, chaining, errors."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocinet import (
    CNI,
    CNIError,
    NetError,
    PluginNotFoundError,
    PluginTimeoutError,
    PodRef,
    PortMapping,
    RuntimeConf,
    SubprocessExecutor,
    parse_network_config,
)
from ocinet.testing import FakePlugins

ALLOWED_ENV = {
    "PATH",
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_ARGS",
    "CNI_PATH",
    "LC_CTYPE",  # Python's own locale coercion (PEP 538) inside the fake plugin
}


def _rt(cid: str = "c1") -> RuntimeConf:
    return RuntimeConf.for_pod(
        container_id=cid,
        netns="/run/netns/test",
        pod=PodRef(namespace="default", name="web", uid="uid-1"),
        port_mappings=[PortMapping(host_port=8080, container_port=80)],
        bandwidth=None,
        mac="aa:bb:cc:00:00:01",
    )


def _cni(fake: FakePlugins, tmp_path: Path, **kw: float) -> CNI:
    return CNI(plugin_dirs=[tmp_path / "empty", fake.directory], cache_dir=tmp_path / "cache", **kw)


async def test_add_runs_chain_with_spec_env_and_injected_config(
    fake_plugins: FakePlugins, tmp_path: Path
) -> None:
    net = parse_network_config(
        fake_plugins.network(
            fake_plugins.plugin("fake-a", ip="10.99.0.7/24"),
            fake_plugins.plugin("fake-b", extra={"capabilities": {"portMappings": True}}),
            fake_plugins.plugin("fake-c", extra={"capabilities": {"mac": True, "dns": True}}),
        )
    )
    cni = _cni(fake_plugins, tmp_path)
    result = await cni.add(net, _rt())
    assert [ip.address for ip in result.ips] == ["10.99.0.7/24"]

    calls = fake_plugins.calls()
    assert [(c["plugin"], c["command"]) for c in calls] == [
        ("fake-a", "ADD"),
        ("fake-b", "ADD"),
        ("fake-c", "ADD"),
    ]
    env = calls[0]["env"]
    assert set(env) <= ALLOWED_ENV
    assert env["CNI_CONTAINERID"] == "c1"
    assert env["CNI_NETNS"] == "/run/netns/test"
    assert env["CNI_IFNAME"] == "eth0"
    assert env["CNI_PATH"] == f"{tmp_path / 'empty'}:{fake_plugins.directory}"
    assert env["CNI_ARGS"] == (
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;"
        "K8S_POD_INFRA_CONTAINER_ID=c1;K8S_POD_UID=uid-1"
    )
    first, second, third = (c["conf"] for c in calls)
    for conf in (first, second, third):
        assert conf["name"] == "fakenet" and conf["cniVersion"] == "1.0.0"
    assert "prevResult" not in first and "runtimeConfig" not in first
    assert second["prevResult"]["ips"][0]["address"] == "10.99.0.7/24"
    assert second["runtimeConfig"] == {
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]
    }
    # fake-c declares mac and dns, but only mac was supplied by the runtime.
    assert third["runtimeConfig"] == {"mac": "aa:bb:cc:00:00:01"}

    cache_file = tmp_path / "cache" / "results" / "fakenet-c1-eth0"
    cached = json.loads(cache_file.read_text())
    assert cached["kind"] == "cniCacheV1"
    assert cached["containerId"] == "c1" and cached["ifName"] == "eth0"
    assert cached["networkName"] == "fakenet" and cached["netns"] == "/run/netns/test"
    assert base64.b64decode(cached["config"]) == net.raw
    assert cached["result"] == result.to_json()
    assert ["K8S_POD_NAME", "web"] in cached["cniArgs"]
    assert oct(cache_file.stat().st_mode & 0o777) == "0o600"


async def test_plugin_result_of_older_version_is_converted(
    fake_plugins: FakePlugins, tmp_path: Path
) -> None:
    old = {
        "cniVersion": "0.3.1",
        "ips": [{"version": "4", "address": "10.5.0.2/16", "gateway": "10.5.0.1"}],
    }
    net = parse_network_config(
        fake_plugins.network(
            fake_plugins.plugin("fake-a", result=old), fake_plugins.plugin("fake-b")
        )
    )
    result = await _cni(fake_plugins, tmp_path).add(net, _rt())
    assert result.cni_version == "1.0.0"
    prev = fake_plugins.calls()[1]["conf"]["prevResult"]
    assert prev == {
        "cniVersion": "1.0.0",
        "ips": [{"address": "10.5.0.2/16", "gateway": "10.5.0.1"}],
    }


async def test_delete_reverse_order_with_cached_prev_result_and_idempotent(
    fake_plugins: FakePlugins, tmp_path: Path
) -> None:
    net = parse_network_config(
        fake_plugins.network(fake_plugins.plugin("fake-a"), fake_plugins.plugin("fake-b"))
    )
    cni = _cni(fake_plugins, tmp_path)
    result = await cni.add(net, _rt())
    fake_plugins.clear()
    await cni.delete(net, _rt())
    calls = fake_plugins.calls()
    assert [(c["plugin"], c["command"]) for c in calls] == [("fake-b", "DEL"), ("fake-a", "DEL")]
    assert all(c["conf"]["prevResult"] == result.to_json() for c in calls)
    assert not (tmp_path / "cache" / "results" / "fakenet-c1-eth0").exists()

    fake_plugins.clear()
    await cni.delete(net, _rt())  # second DEL: no cache, still fine
    calls = fake_plugins.calls()
    assert len(calls) == 2 and all("prevResult" not in c["conf"] for c in calls)


async def test_delete_uses_the_cache_entry_its_caller_read(
    fake_plugins: FakePlugins, tmp_path: Path
) -> None:
    net = parse_network_config(fake_plugins.network(fake_plugins.plugin("fake-a")))
    cni = _cni(fake_plugins, tmp_path)
    result = await cni.add(net, _rt())
    entry = cni.cache.load(net.name, "c1", "eth0")
    assert entry is not None
    fake_plugins.clear()
    await cni.delete(net, _rt(), cached=entry)
    assert fake_plugins.calls()[0]["conf"]["prevResult"] == result.to_json()
    assert cni.cache.load(net.name, "c1", "eth0") is None
    await cni.add(net, _rt())
    fake_plugins.clear()
    await cni.delete(net, _rt(), cached=None)  # the caller found none: none is read
    assert "prevResult" not in fake_plugins.calls()[0]["conf"]


async def test_an_unreadable_cache_entry_does_not_block_delete(
    fake_plugins: FakePlugins, tmp_path: Path
) -> None:
    net = parse_network_config(fake_plugins.network(fake_plugins.plugin("fake-a")))
    cni = _cni(fake_plugins, tmp_path)
    entry = tmp_path / "cache" / "results" / "fakenet-c1-eth0"
    torn = (
        b"",  # a crash between create and write
        b'{"kind": "cniCacheV1", "containerId": "c1", "result": {"cniVer',
        json.dumps(
            {
                "kind": "cniCacheV1",
                "containerId": "c1",
                "ifName": "eth0",
                "networkName": "fakenet",
                "result": {"cniVersion": "1.0.0", "ips": "not a list"},
            }
        ).encode(),
    )
    for text in torn:
        await cni.add(net, _rt())
        entry.write_bytes(text)
        fake_plugins.clear()
        await cni.delete(net, _rt())  # as if the entry were missing, not an error
        [call] = fake_plugins.calls()
        assert call["command"] == "DEL" and "prevResult" not in call["conf"]
        assert not entry.exists()  # and the bad entry is gone with the attachment


async def test_delete_of_pre_040_network_passes_no_prev_result(
    fake_plugins: FakePlugins, tmp_path: Path
) -> None:
    net = parse_network_config(fake_plugins.network(fake_plugins.plugin(), version="0.3.1"))
    cni = _cni(fake_plugins, tmp_path)
    await cni.add(net, _rt())
    fake_plugins.clear()
    await cni.delete(net, _rt())
    assert "prevResult" not in fake_plugins.calls()[0]["conf"]


def test_a_new_process_deletes_using_the_on_disk_cache(
    fake_plugins: FakePlugins, tmp_path: Path
) -> None:
    conf = fake_plugins.network(fake_plugins.plugin("fake-a", ip="10.99.0.42/24"))
    net = parse_network_config(conf)
    cni = _cni(fake_plugins, tmp_path)
    cni.add_sync(net, _rt())
    fake_plugins.clear()
    script = f"""
import json, sys
from ocinet import CNI, RuntimeConf, parse_network_config
cni = CNI(plugin_dirs=[{str(fake_plugins.directory)!r}], cache_dir={str(tmp_path / "cache")!r})
net = parse_network_config(json.loads({json.dumps(json.dumps(conf))}))
cni.delete_sync(net, RuntimeConf(container_id="c1", netns="/run/netns/test"))
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    (call,) = fake_plugins.calls()
    assert call["command"] == "DEL"
    assert call["conf"]["prevResult"]["ips"][0]["address"] == "10.99.0.42/24"
    assert cni.cached_attachments() == []


async def test_check_uses_cache_and_honours_disable_check(
    fake_plugins: FakePlugins, tmp_path: Path
) -> None:
    cni = _cni(fake_plugins, tmp_path)
    net = parse_network_config(fake_plugins.network(fake_plugins.plugin()))
    with pytest.raises(CNIError) as no_cache:
        await cni.check(net, _rt())
    assert no_cache.value.code == 3
    result = await cni.add(net, _rt())
    fake_plugins.clear()
    await cni.check(net, _rt())
    (call,) = fake_plugins.calls()
    assert call["command"] == "CHECK" and call["conf"]["prevResult"] == result.to_json()

    fake_plugins.clear()
    disabled = parse_network_config(fake_plugins.network(fake_plugins.plugin(), disableCheck=True))
    await cni.check(disabled, _rt())
    assert fake_plugins.calls() == []
    with pytest.raises(CNIError, match="does not support CHECK"):
        await cni.check(
            parse_network_config(fake_plugins.network(fake_plugins.plugin(), version="0.3.1")),
            _rt(),
        )


async def test_plugin_error_json_becomes_cni_error(
    fake_plugins: FakePlugins, tmp_path: Path
) -> None:
    error = {"cniVersion": "1.0.0", "code": 7, "msg": "bad config", "details": "no subnet"}
    net = parse_network_config(
        fake_plugins.network(
            fake_plugins.plugin("fake-a", fail_on=["ADD"], error=error, stderr="oops", exit=3)
        )
    )
    with pytest.raises(CNIError) as info:
        await _cni(fake_plugins, tmp_path).add(net, _rt())
    err = info.value
    assert (err.code, err.msg, err.details) == (7, "bad config", "no subnet")
    assert (err.plugin, err.command, err.stderr) == ("fake-a", "ADD", "oops")
    assert isinstance(err, NetError)
    assert err.to_json()["code"] == 7
    assert "bad config" in str(err) and "fake-a" in str(err)
    assert not (tmp_path / "cache" / "results").exists()


@pytest.mark.parametrize(
    ("fake", "expected"),
    [
        ({"stderr": "exploded"}, "exploded"),
        ({"stdout_raw": "garbage"}, "unparsable output"),
        ({}, "no error message"),
    ],
)
async def test_plugin_failure_without_error_json(
    fake_plugins: FakePlugins, tmp_path: Path, fake: dict[str, str], expected: str
) -> None:
    net = parse_network_config(
        fake_plugins.network(fake_plugins.plugin("fake-a", fail_on=["ADD"], **fake))
    )
    with pytest.raises(CNIError, match=expected) as info:
        await _cni(fake_plugins, tmp_path).add(net, _rt())
    assert info.value.code == 0


async def test_invalid_result_is_an_error(fake_plugins: FakePlugins, tmp_path: Path) -> None:
    net = parse_network_config(
        fake_plugins.network(
            fake_plugins.plugin("fake-a", result={"cniVersion": "1.0.0", "ips": [{"address": "x"}]})
        )
    )
    with pytest.raises(CNIError, match="invalid result"):
        await _cni(fake_plugins, tmp_path).add(net, _rt())


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


async def test_timeout_kills_and_reaps_the_plugin_and_its_children(
    fake_plugins: FakePlugins, tmp_path: Path
) -> None:
    net = parse_network_config(
        fake_plugins.network(fake_plugins.plugin("fake-a", sleep=30, spawn_child=True))
    )
    started = time.monotonic()
    with pytest.raises(PluginTimeoutError) as info:
        await _cni(fake_plugins, tmp_path, timeout=0.5).add(net, _rt())
    assert time.monotonic() - started < 10
    assert info.value.plugin == "fake-a" and info.value.command == "ADD"
    (call,) = fake_plugins.calls()
    assert not os.path.exists(f"/proc/{call['pid']}")
    deadline = time.monotonic() + 5
    while not _gone(call["child"]) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    assert _gone(call["child"])  # the whole process group was killed


async def test_a_cancelled_caller_lets_the_plugin_finish(
    fake_plugins: FakePlugins, tmp_path: Path
) -> None:
    # Killed half-way, a plugin can leave what no DEL undoes (host-local's empty lease).
    finished = tmp_path / "finished"
    net = parse_network_config(
        fake_plugins.network(fake_plugins.plugin("fake-a", sleep=0.5, finished=str(finished)))
    )
    task = asyncio.create_task(_cni(fake_plugins, tmp_path).add(net, _rt()))
    while not fake_plugins.calls():  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    task.cancel()
    await asyncio.sleep(0.05)
    task.cancel()  # a second cancellation does not cut the wait short either
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished.exists()
    assert _gone(fake_plugins.calls()[0]["pid"])


async def test_a_plugin_past_the_grace_after_a_cancellation_is_killed_and_reaped(
    fake_plugins: FakePlugins, tmp_path: Path
) -> None:
    finished = tmp_path / "finished"
    net = parse_network_config(
        fake_plugins.network(
            fake_plugins.plugin("fake-a", sleep=30, spawn_child=True, finished=str(finished))
        )
    )
    cni = _cni(fake_plugins, tmp_path)
    cni.executor = SubprocessExecutor(cancel_grace=0.3)
    task = asyncio.create_task(cni.add(net, _rt()))
    while not fake_plugins.calls():  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 0.25 < time.monotonic() - started < 10
    (call,) = fake_plugins.calls()
    assert not os.path.exists(f"/proc/{call['pid']}")
    deadline = time.monotonic() + 5
    while not _gone(call["child"]) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    assert _gone(call["child"])
    assert not finished.exists()


async def test_missing_plugin(fake_plugins: FakePlugins, tmp_path: Path) -> None:
    net = parse_network_config(fake_plugins.network({"type": "does-not-exist"}))
    with pytest.raises(PluginNotFoundError, match="does-not-exist"):
        await _cni(fake_plugins, tmp_path).add(net, _rt())


async def test_status_only_for_11_networks(fake_plugins: FakePlugins, tmp_path: Path) -> None:
    cni = _cni(fake_plugins, tmp_path)
    await cni.status(parse_network_config(fake_plugins.network(fake_plugins.plugin())))
    assert fake_plugins.calls() == []
    net11 = parse_network_config(
        fake_plugins.network(
            fake_plugins.plugin("fake-a"), fake_plugins.plugin("fake-b"), version="1.1.0"
        )
    )
    await cni.status(net11)
    calls = fake_plugins.calls()
    assert [(c["plugin"], c["command"]) for c in calls] == [
        ("fake-a", "STATUS"),
        ("fake-b", "STATUS"),
    ]
    assert set(calls[0]["env"]) <= {"PATH", "CNI_COMMAND", "CNI_PATH", "LC_CTYPE"}
    failing = parse_network_config(
        fake_plugins.network(
            fake_plugins.plugin(
                "fake-a", fail_on=["STATUS"], error={"code": 50, "msg": "not available"}
            ),
            version="1.1.0",
        )
    )
    with pytest.raises(CNIError) as info:
        await cni.status(failing)
    assert info.value.code == 50


async def test_gc_deletes_stale_cached_attachments_then_gcs(
    fake_plugins: FakePlugins, tmp_path: Path
) -> None:
    cni = _cni(fake_plugins, tmp_path)
    net = parse_network_config(fake_plugins.network(fake_plugins.plugin(), version="1.1.0"))
    other = parse_network_config(fake_plugins.network(fake_plugins.plugin(), name="other"))
    await cni.add(net, _rt("keep"))
    await cni.add(net, _rt("stale"))
    await cni.add(other, _rt("elsewhere"))
    fake_plugins.clear()
    await cni.gc(net, [("keep", "eth0")])
    calls = fake_plugins.calls()
    assert [(c["command"], c["env"].get("CNI_CONTAINERID")) for c in calls] == [
        ("DEL", "stale"),
        ("GC", None),
    ]
    assert calls[0]["env"]["CNI_NETNS"] == "/run/netns/test"  # from the cache entry
    assert "K8S_POD_NAME=web" in calls[0]["env"]["CNI_ARGS"]
    expected = [{"containerID": "keep", "ifname": "eth0"}]
    assert calls[1]["conf"]["cni.dev/valid-attachments"] == expected
    assert calls[1]["conf"]["cni.dev/attachments"] == expected
    left = sorted(a.container_id for a in cni.cached_attachments())
    assert left == ["elsewhere", "keep"]

    fake_plugins.clear()
    disabled = parse_network_config(
        fake_plugins.network(fake_plugins.plugin(), disableGC=True, version="1.1.0")
    )
    await cni.gc(disabled, [])
    assert fake_plugins.calls() == []


async def test_version_and_validate(fake_plugins: FakePlugins, tmp_path: Path) -> None:
    cni = _cni(fake_plugins, tmp_path)
    info = await cni.version("fake-a")
    assert info.supports("1.1.0") and not info.supports("0.2.0")
    await cni.validate(parse_network_config(fake_plugins.network(fake_plugins.plugin())))
    with pytest.raises(CNIError) as err:
        await cni.validate(
            parse_network_config(fake_plugins.network(fake_plugins.plugin(), version="0.2.0"))
        )
    assert err.value.code == 1


async def test_sync_wrappers_refuse_a_running_loop(
    fake_plugins: FakePlugins, tmp_path: Path
) -> None:
    cni = _cni(fake_plugins, tmp_path)
    with pytest.raises(NetError, match="await it instead"):
        cni.version_sync("fake-a")


def test_sync_wrappers_work_without_a_loop(fake_plugins: FakePlugins, tmp_path: Path) -> None:
    cni = _cni(fake_plugins, tmp_path)
    net = parse_network_config(fake_plugins.network(fake_plugins.plugin()))
    result = cni.add_sync(net, _rt())
    cni.check_sync(net, _rt())
    assert cni.cached_result(net, _rt()) == result
    cni.delete_sync(net, _rt())
    cni.status_sync(net)
    cni.gc_sync(net, [])
    assert cni.version_sync("fake-b").cni_version == "1.0.0"
    assert os.listdir(tmp_path / "cache" / "results") == []
