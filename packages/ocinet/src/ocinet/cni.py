"""Running a network's plugin chain for ADD, DEL, CHECK, STATUS, GC and VERSION.

This is the runtime side of the CNI 1.1 spec: per plugin it injects ``name``,
``cniVersion``, ``prevResult`` and the ``runtimeConfig`` capabilities the plugin declares,
chains results through ADD, caches the final result so DEL and CHECK get ``prevResult``
even after a restart, and keeps DEL idempotent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any, TypeVar

from ocinet.cache import DEFAULT_CACHE_DIR, CachedAttachment, ResultCache
from ocinet.config import NetworkConfig, PluginConfig
from ocinet.errors import CNIError, NetError, ResultError
from ocinet.invoke import (
    DEFAULT_PLUGIN_DIRS,
    PluginExecutor,
    PluginRequest,
    SubprocessExecutor,
    find_plugin,
    plugin_env,
)
from ocinet.result import Result, VersionInfo
from ocinet.runtime import RuntimeConf
from ocinet.version import CURRENT_VERSION, version_at_least

__all__ = ["CNI", "run_sync"]

log = logging.getLogger(__name__)


class _Unread:
    """The cache entry was not read by the caller (read it here)."""


_UNREAD = _Unread()
T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run one of ocinet's coroutines from synchronous code (not from inside a loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop here: the normal case
    else:
        coro.close()
        raise NetError(
            "a synchronous ocinet call was made on a running event loop; await it instead"
        )
    return asyncio.run(coro)


class CNI:
    """Runs plugin chains (network lists) against attachments; the libcni of ocinet."""

    def __init__(
        self,
        *,
        plugin_dirs: Sequence[str | os.PathLike[str]] = DEFAULT_PLUGIN_DIRS,
        cache_dir: str | os.PathLike[str] = DEFAULT_CACHE_DIR,
        timeout: float = 60.0,
        env: dict[str, str] | None = None,
        executor: PluginExecutor | None = None,
    ) -> None:
        self.plugin_dirs = tuple(plugin_dirs)
        self.cache = ResultCache(cache_dir)
        self.timeout = timeout
        self.env = dict(env or {})
        self.executor: PluginExecutor = executor or SubprocessExecutor()

    # -- the chain commands -------------------------------------------------------------

    async def add(self, network: NetworkConfig, rt: RuntimeConf) -> Result:
        """ADD every plugin in order, chaining ``prevResult``; cache and return the result."""
        result: Result | None = None
        for plugin in network.plugins:
            stdout = await self._run(network, plugin, "ADD", rt, result)
            try:
                result = Result.from_json(stdout).convert(network.cni_version)
            except ResultError as err:
                raise CNIError(
                    0, f"invalid result: {err}", plugin=plugin.type, command="ADD"
                ) from err
        assert result is not None  # a network has at least one plugin
        await asyncio.to_thread(self.cache.save, network.name, network.raw, rt, result)
        log.info(
            "event=cni_add network=%s container=%s ifname=%s ips=%s",
            network.name,
            rt.container_id,
            rt.ifname,
            ",".join(ip.address for ip in result.ips),
        )
        return result

    async def delete(
        self,
        network: NetworkConfig,
        rt: RuntimeConf,
        *,
        best_effort: bool = False,
        cached: CachedAttachment | _Unread | None = _UNREAD,
    ) -> None:
        """DEL every plugin in reverse order with the cached ``prevResult``; idempotent.

        Missing cache entries (a second DEL, or a DEL after a failed ADD) are fine: plugins
        get no ``prevResult`` and must succeed on what is already gone. With
        ``best_effort`` a failing plugin does not stop the others' DEL (cleaning up after a
        failed ADD); the first error is raised at the end. ``cached``: the cache entry
        when the caller has just read it (None: there is none), so it is not read again.
        """
        prev: Result | None = None
        if version_at_least(network.cni_version, "0.4.0"):
            if isinstance(cached, _Unread):
                cached = await asyncio.to_thread(
                    self.cache.readable, network.name, rt.container_id, rt.ifname
                )
            try:
                prev = self._result_of(network, rt, cached)
            except ResultError as err:  # plugins DEL without it, as after a lost entry
                log.warning(
                    "event=cni_cache_unreadable container=%s error=%s", rt.container_id, err
                )
        errors: list[NetError] = []
        for plugin in reversed(network.plugins):
            try:
                await self._run(network, plugin, "DEL", rt, prev)
            except NetError as err:
                if not best_effort:
                    raise
                errors.append(err)
        if errors:
            raise errors[0]
        await asyncio.to_thread(self.cache.delete, network.name, rt.container_id, rt.ifname)
        log.info(
            "event=cni_del network=%s container=%s ifname=%s",
            network.name,
            rt.container_id,
            rt.ifname,
        )

    async def check(self, network: NetworkConfig, rt: RuntimeConf) -> None:
        """CHECK every plugin against the cached result (a no-op if ``disableCheck``)."""
        if not version_at_least(network.cni_version, "0.4.0"):
            raise CNIError(
                0,
                f"configuration version {network.cni_version} does not support CHECK",
                command="CHECK",
            )
        if network.disable_check:
            return
        prev = await asyncio.to_thread(self._cached_result, network, rt)
        if prev is None:
            raise CNIError(
                3,
                f"no cached result for {rt.container_id}/{rt.ifname} on {network.name}",
                command="CHECK",
            )
        for plugin in network.plugins:
            await self._run(network, plugin, "CHECK", rt, prev)

    async def status(self, network: NetworkConfig) -> None:
        """STATUS every plugin (CNI 1.1); raises the first plugin's error; no-op before 1.1."""
        if not version_at_least(network.cni_version, "1.1.0"):
            return
        for plugin in network.plugins:
            await self._run(network, plugin, "STATUS", None, None)

    async def gc(
        self, network: NetworkConfig, valid_attachments: Iterable[tuple[str, str]] | None = None
    ) -> None:
        """Remove stale attachments: DEL each cached one not listed, then GC (CNI 1.1).

        ``valid_attachments`` are ``(container_id, ifname)`` pairs still in use; ``None``
        means "unknown", which skips the cache sweep but still lets plugins GC.
        """
        if network.disable_gc:
            return
        valid = None if valid_attachments is None else set(valid_attachments)
        errors: list[NetError] = []
        if valid is not None:
            cached = await asyncio.to_thread(self.cache.attachments, network_name=network.name)
            for entry in cached:
                if (entry.container_id, entry.ifname) in valid:
                    continue
                try:
                    await self.delete(network, entry.runtime_conf())
                except NetError as err:
                    log.warning(
                        "event=cni_gc_del_failed network=%s container=%s error=%s",
                        network.name,
                        entry.container_id,
                        err,
                    )
                    errors.append(err)
        if version_at_least(network.cni_version, "1.1.0"):
            listed = [{"containerID": c, "ifname": i} for c, i in sorted(valid or ())]
            # The spec's key, plus the name an early 1.1 draft used (libcni sends both).
            extra = (
                {}
                if valid is None
                else {"cni.dev/valid-attachments": listed, "cni.dev/attachments": listed}
            )
            for plugin in network.plugins:
                try:
                    await self._run(network, plugin, "GC", None, None, extra)
                except NetError as err:
                    errors.append(err)
        if errors:
            raise errors[0]

    async def version(self, plugin_type: str) -> VersionInfo:
        """Ask a plugin which spec versions it speaks."""
        path = find_plugin(plugin_type, self.plugin_dirs)
        stdin = json.dumps({"cniVersion": CURRENT_VERSION}).encode()
        request = PluginRequest(
            plugin=plugin_type,
            path=path,
            command="VERSION",
            stdin=stdin,
            env=plugin_env("VERSION", self.plugin_dirs, extra=self.env),
            timeout=self.timeout,
        )
        stdout = await self.executor.run(request)
        try:
            obj = json.loads(stdout)
            return VersionInfo(
                cni_version=str(obj["cniVersion"]),
                supported_versions=tuple(str(v) for v in obj["supportedVersions"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise CNIError(
                0, f"invalid VERSION answer {stdout[:200]!r}", plugin=plugin_type, command="VERSION"
            ) from err

    async def validate(self, network: NetworkConfig) -> None:
        """Check that every plugin exists and speaks the network's version (runs VERSION)."""
        for plugin in network.plugins:
            info = await self.version(plugin.type)
            if not info.supports(network.cni_version):
                raise CNIError(
                    1,
                    f"plugin {plugin.type} does not support version {network.cni_version}",
                    f"it supports {', '.join(info.supported_versions)}",
                    plugin=plugin.type,
                    command="VERSION",
                )

    # -- cache access ---------------------------------------------------------------------

    def cached_attachments(
        self, *, network_name: str | None = None, container_id: str | None = None
    ) -> list[CachedAttachment]:
        """What the cache says is attached (e.g. to rebuild state after a restart)."""
        return self.cache.attachments(network_name=network_name, container_id=container_id)

    def cached_result(self, network: NetworkConfig, rt: RuntimeConf) -> Result | None:
        """The result ADD cached for ``rt`` on ``network``, in the network's version."""
        return self._cached_result(network, rt)

    # -- synchronous entry points ---------------------------------------------------------

    def add_sync(self, network: NetworkConfig, rt: RuntimeConf) -> Result:
        """Blocking :meth:`add`."""
        return run_sync(self.add(network, rt))

    def delete_sync(self, network: NetworkConfig, rt: RuntimeConf) -> None:
        """Blocking :meth:`delete`."""
        run_sync(self.delete(network, rt))

    def check_sync(self, network: NetworkConfig, rt: RuntimeConf) -> None:
        """Blocking :meth:`check`."""
        run_sync(self.check(network, rt))

    def status_sync(self, network: NetworkConfig) -> None:
        """Blocking :meth:`status`."""
        run_sync(self.status(network))

    def gc_sync(
        self, network: NetworkConfig, valid_attachments: Iterable[tuple[str, str]] | None = None
    ) -> None:
        """Blocking :meth:`gc`."""
        run_sync(self.gc(network, valid_attachments))

    def version_sync(self, plugin_type: str) -> VersionInfo:
        """Blocking :meth:`version`."""
        return run_sync(self.version(plugin_type))

    # -- internals ------------------------------------------------------------------------

    def _cached_result(self, network: NetworkConfig, rt: RuntimeConf) -> Result | None:
        entry = self.cache.load(network.name, rt.container_id, rt.ifname)
        return self._result_of(network, rt, entry)

    @staticmethod
    def _result_of(
        network: NetworkConfig, rt: RuntimeConf, entry: CachedAttachment | None
    ) -> Result | None:
        if entry is None or not entry.result:
            return None
        try:
            return Result.from_json(entry.result).convert(network.cni_version)
        except ResultError as err:
            raise ResultError(
                f"cached result of {network.name}/{rt.container_id}/{rt.ifname}: {err}"
            ) from err

    async def _run(
        self,
        network: NetworkConfig,
        plugin: PluginConfig,
        command: str,
        rt: RuntimeConf | None,
        prev: Result | None,
        extra: dict[str, Any] | None = None,
    ) -> bytes:
        path = find_plugin(plugin.type, self.plugin_dirs)
        conf = build_plugin_config(network, plugin, rt, prev, extra)
        env = plugin_env(
            command,
            self.plugin_dirs,
            container_id=rt.container_id if rt else "",
            netns=rt.netns if rt else "",
            ifname=rt.ifname if rt else "",
            cni_args=rt.cni_args() if rt else "",
            extra=self.env,
        )
        request = PluginRequest(
            plugin=plugin.type,
            path=path,
            command=command,
            stdin=json.dumps(conf).encode(),
            env=env,
            timeout=self.timeout,
        )
        return await self.executor.run(request)


def build_plugin_config(
    network: NetworkConfig,
    plugin: PluginConfig,
    rt: RuntimeConf | None,
    prev: Result | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON one plugin receives on stdin.

    ``runtimeConfig`` carries only capabilities the plugin declares (and only those the
    runtime supplied); ``prevResult`` is rendered in the network's version.
    """
    conf = dict(plugin.raw)
    conf["name"] = network.name
    conf["cniVersion"] = network.cni_version
    conf.pop("prevResult", None)
    if prev is not None:
        conf["prevResult"] = prev.to_json(network.cni_version)
    if rt is not None:
        runtime_config = {
            cap: rt.capability_args[cap]
            for cap in sorted(plugin.capabilities)
            if cap in rt.capability_args
        }
        if runtime_config:
            conf["runtimeConfig"] = runtime_config
    conf.update(extra or {})
    return conf
