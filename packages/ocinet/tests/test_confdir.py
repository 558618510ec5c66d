"""Watching a configuration directory: readiness, reasons, inotify and polling."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ocinet import (
    CNIError,
    ConfigDir,
    NetworkNotFoundError,
    NetworkNotReadyError,
    PodNetwork,
    PodRef,
    PortMapping,
    Readiness,
)
from ocinet.testing import FakePlugins


def _write(path: Path, obj: Any) -> None:
    """Write atomically, as configuration managers do (a temp file renamed into place)."""
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(json.dumps(obj))
    tmp.rename(path)


def test_readiness_reasons(tmp_path: Path, fake_plugins: FakePlugins) -> None:
    conf_dir = tmp_path / "net.d"
    configs = ConfigDir(conf_dir, plugin_dirs=[fake_plugins.directory])
    assert configs.reload() == Readiness(
        ready=False, reason=f"no valid CNI network config found in {conf_dir}"
    )
    with pytest.raises(NetworkNotReadyError):
        configs.get()
    conf_dir.mkdir()
    (conf_dir / "05-bad.conflist").write_text("{")
    state = configs.reload()
    assert (
        not state.ready and "05-bad.conflist" in state.reason and "not valid JSON" in state.reason
    )

    _write(conf_dir / "10-net.conflist", fake_plugins.network({"type": "missing-plugin"}))
    state = configs.reload()
    assert not state.ready and state.network == "fakenet"
    assert "missing-plugin" in state.reason

    _write(conf_dir / "10-net.conflist", fake_plugins.network(fake_plugins.plugin()))
    assert configs.reload() == Readiness(ready=True, network="fakenet")
    assert configs.get().name == "fakenet"
    assert [p.name for p, _ in configs.errors] == ["05-bad.conflist"]

    named = ConfigDir(conf_dir, network_name="other", plugin_dirs=[fake_plugins.directory])
    state = named.reload()
    assert not state.ready and "'other' not found" in state.reason
    with pytest.raises(NetworkNotFoundError):
        named.get()


@pytest.mark.parametrize("use_inotify", [True, False], ids=["inotify", "poll"])
async def test_network_added_after_start_becomes_ready(
    tmp_path: Path, fake_plugins: FakePlugins, use_inotify: bool
) -> None:
    conf_dir = tmp_path / "net.d"
    conf_dir.mkdir()
    seen: list[Readiness] = []
    configs = ConfigDir(
        conf_dir,
        plugin_dirs=[fake_plugins.directory],
        use_inotify=use_inotify,
        poll_interval=0.05,
    )
    configs.add_listener(seen.append)
    configs.start()
    try:
        await asyncio.sleep(0.1)
        assert not configs.ready
        assert configs.mode == ("inotify" if use_inotify else "poll")
        _write(conf_dir / "10-net.conflist", fake_plugins.network(fake_plugins.plugin()))
        state = await configs.wait_ready(timeout=5)
        assert state.ready and configs.get().name == "fakenet"

        (conf_dir / "10-net.conflist").unlink()
        for _ in range(100):
            if not configs.ready:
                break
            await asyncio.sleep(0.02)
        assert not configs.ready
        assert seen[-1].ready is False and any(s.ready for s in seen)
    finally:
        await configs.stop()


async def test_watch_survives_directory_removal_and_creation(
    tmp_path: Path, fake_plugins: FakePlugins
) -> None:
    conf_dir = tmp_path / "net.d"
    configs = ConfigDir(conf_dir, plugin_dirs=[fake_plugins.directory], poll_interval=0.05)
    configs.start()
    try:
        await asyncio.sleep(0.1)
        assert configs.mode == "poll"  # nothing to watch yet
        conf_dir.mkdir()
        _write(conf_dir / "10-net.conflist", fake_plugins.network(fake_plugins.plugin()))
        await configs.wait_ready(timeout=5)
        for _ in range(100):
            if configs.mode == "inotify":
                break
            await asyncio.sleep(0.02)
        assert configs.mode == "inotify"
        shutil.rmtree(conf_dir)
        for _ in range(100):
            if not configs.ready:
                break
            await asyncio.sleep(0.02)
        assert not configs.ready
        conf_dir.mkdir()
        _write(conf_dir / "20-net.conflist", fake_plugins.network(fake_plugins.plugin(), name="n2"))
        state = await configs.wait_ready(timeout=5)
        assert state.network == "n2"
    finally:
        await configs.stop()


async def test_pod_network_setup_teardown_and_failed_add_cleanup(
    tmp_path: Path, fake_plugins: FakePlugins
) -> None:
    conf_dir = tmp_path / "net.d"
    conf_dir.mkdir()
    pods = PodNetwork(
        conf_dir=conf_dir, plugin_dirs=[fake_plugins.directory], cache_dir=tmp_path / "cache"
    )
    with pytest.raises(NetworkNotReadyError, match="no valid CNI network config"):
        await pods.setup(container_id="c1", netns="/run/netns/x")
    _write(
        conf_dir / "10-net.conflist",
        fake_plugins.network(
            fake_plugins.plugin("fake-a"),
            fake_plugins.plugin("fake-b", extra={"capabilities": {"portMappings": True}}),
        ),
    )
    async with pods:
        assert pods.readiness.ready
        pod = PodRef(namespace="default", name="web")
        result = await pods.setup(
            container_id="c1",
            netns="/run/netns/x",
            pod=pod,
            port_mappings=[PortMapping(host_port=80, container_port=8080)],
        )
        assert result.ips[0].address == "10.99.0.2/24"
        await pods.check(container_id="c1", netns="/run/netns/x", pod=pod)
        fake_plugins.clear()
        # After a "restart" the caller may only know the container id: the cache fills in.
        await pods.teardown(container_id="c1")
        calls = fake_plugins.calls()
        assert [(c["plugin"], c["command"]) for c in calls] == [
            ("fake-b", "DEL"),
            ("fake-a", "DEL"),
        ]
        assert calls[0]["env"]["CNI_NETNS"] == "/run/netns/x"
        assert calls[0]["conf"]["runtimeConfig"]["portMappings"][0]["hostPort"] == 80
        assert "K8S_POD_NAME=web" in calls[0]["env"]["CNI_ARGS"]
        await pods.teardown(container_id="c1")  # idempotent
        await pods.setup(container_id="c2", netns="/run/netns/y", pod=pod)
        (tmp_path / "cache" / "results" / f"{pods.readiness.network}-c2-eth0").write_bytes(b"{")
        fake_plugins.clear()
        await pods.teardown(container_id="c2", netns="/run/netns/y")  # a torn entry: no error
        assert [c["command"] for c in fake_plugins.calls()] == ["DEL", "DEL"]

        _write(
            conf_dir / "10-net.conflist",
            fake_plugins.network(
                fake_plugins.plugin("fake-a"),
                fake_plugins.plugin("fake-b", fail_on=["ADD"], error={"code": 11, "msg": "later"}),
            ),
        )
        await asyncio.sleep(0.2)
        fake_plugins.clear()
        with pytest.raises(CNIError) as info:
            await pods.setup(container_id="c2", netns="/run/netns/y")
        assert info.value.code == 11
        assert [(c["plugin"], c["command"]) for c in fake_plugins.calls()] == [
            ("fake-a", "ADD"),
            ("fake-b", "ADD"),
            ("fake-b", "DEL"),
            ("fake-a", "DEL"),
        ]
        assert pods.cni.cached_attachments() == []
        await pods.status()
        await pods.validate()
        await pods.gc([])


def test_pod_network_sync_api(tmp_path: Path, fake_plugins: FakePlugins) -> None:
    conf_dir = tmp_path / "net.d"
    conf_dir.mkdir()
    _write(conf_dir / "10-net.conflist", fake_plugins.network(fake_plugins.plugin()))
    pods = PodNetwork(
        conf_dir=conf_dir, plugin_dirs=[fake_plugins.directory], cache_dir=tmp_path / "cache"
    )
    assert pods.readiness.ready
    result = pods.setup_sync(container_id="c1", netns="/run/netns/x")
    pods.check_sync(container_id="c1", netns="/run/netns/x")
    assert [a.container_id for a in pods.cni.cached_attachments()] == ["c1"]
    pods.teardown_sync(container_id="c1")
    assert result.ips and pods.cni.cached_attachments() == []
