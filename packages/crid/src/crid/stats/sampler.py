"""A cache of pod and container usage, refreshed in a worker thread (as cAdvisor does).

Reading a hundred pods' cgroup files and network counters takes ~15 ms, far over the
1 ms an RPC may take, so the stats RPCs answer from samples taken in the background:

- the first stats RPC starts a loop that samples every READY pod with its RUNNING
  containers every ``interval`` seconds, in one worker thread; CPU rates (nano-cores)
  are computed between consecutive samples of the same cgroup;
- an RPC about a record that has no sample yet, whose sample is older than ``max_age``,
  or whose record changed since (records are frozen and replaced on every change, so the
  record object itself is the key, equality the fallback), is sampled on demand first;
- the writable layer (a walk of the container's upper directory) is measured at most
  every ``layer_interval`` seconds per container;
- samples of removed pods and containers are dropped at every refresh;
- listeners (:meth:`StatsSampler.add_listener`) see each batch of pod samples in the
  worker thread, so the stats service builds its protobuf answers there too;
- pod metrics need *detailed* samples (more cgroup files, every process's open files),
  kept apart: while metrics are asked for (a request in the last ``idle_stop`` seconds),
  one refresh every ``metrics_interval`` seconds is detailed; a metrics request is served
  from detailed samples up to ``metrics_interval + max_age`` old (each metric carries its
  sample's time), else samples detailed on demand; a detailed sample serves stats too;
- the loop stops for good when the daemon closes its event bus (shutdown: later requests
  are sampled on demand), and after ``idle_stop`` seconds without a stats RPC (the next
  one starts it again), so an idle crid samples nothing.

The cache itself is only touched on the event loop; worker threads return samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from crid.config import parse_duration
from crid.context import Context
from crid.state import Container, Sandbox, SandboxState
from crid.stats.collector import StatsCollector
from crid.stats.descriptors import host_groups
from crid.stats.paths import cgroup_dir
from crid.stats.select import running_by_pod
from crid.stats.usage import ContainerUsage, SandboxUsage

__all__ = ["Pod", "SampleListener", "StatsSampler"]

_log = logging.getLogger(__name__)

_ATTACHED: weakref.WeakKeyDictionary[Context, StatsSampler] = weakref.WeakKeyDictionary()

_U = TypeVar("_U")

Pod = tuple[Sandbox, Sequence[Container]]

# Called in the worker thread with each batch of new pod samples (``complete``: every READY
# pod, after a refresh), so that answers can be prepared off the event loop too.
SampleListener = Callable[[Sequence[tuple[Pod, SandboxUsage]], bool], None]


@dataclass(frozen=True, kw_only=True)
class _Entry(Generic[_U]):
    usage: _U
    records: tuple[object, ...]
    sampled_at: float  # time.monotonic()

    def serves(self, records: tuple[object, ...], oldest: float) -> bool:
        # Tuple equality checks identity first (in C), then equality: an equal record
        # (same pid, cgroup, namespaces...) would give the same sample anyway.
        return self.sampled_at >= oldest and self.records == records


class StatsSampler:
    """The usage cache of one :class:`Context` (find it with :meth:`of`)."""

    def __init__(
        self,
        ctx: Context,
        *,
        interval: float = 1.0,
        max_age: float = 3.0,
        layer_interval: float = 10.0,
        idle_stop: float = 60.0,
        metrics_interval: float | None = None,
    ) -> None:
        self.ctx = ctx
        self.interval = interval
        self.metrics_interval = (
            parse_duration(ctx.config.crid.stats.metrics_collection_period)
            if metrics_interval is None
            else metrics_interval
        )
        self.max_age = max_age
        self.idle_stop = idle_stop
        self.collector = StatsCollector(
            hierarchies=ctx.hierarchies,
            store=ctx.store,
            layer_interval=layer_interval,
            groups=host_groups(
                ctx.config.crid.stats.included_pod_metrics, ctx.controllers.available
            ),
        )
        self._containers: dict[str, _Entry[ContainerUsage]] = {}
        self._sandboxes: dict[str, _Entry[SandboxUsage]] = {}
        self._detailed: dict[str, _Entry[SandboxUsage]] = {}
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[SampleListener] = []
        self._last_request = time.monotonic()
        self._last_metrics_request = -float("inf")
        self._last_detailed_refresh = -float("inf")
        self._closed = False
        self.refreshes = 0
        #: Bumped whenever a cached sample is stored or dropped (on the event loop): while
        #: it and the registry's ``changes`` hold, the same request is served the same
        #: samples, until the oldest of them ages out (:meth:`serves_until`).
        self.generation = 0

    @classmethod
    def of(cls, ctx: Context) -> StatsSampler:
        """The sampler of ``ctx`` (created on first use)."""
        found = _ATTACHED.get(ctx)
        if found is None:
            found = _ATTACHED[ctx] = cls(ctx)
        return found

    def add_listener(self, listener: SampleListener) -> None:
        """Have ``listener`` called (in the worker thread) with every batch of pod samples."""
        self._listeners.append(listener)

    def _sample_pods(
        self, pods: Sequence[Pod], complete: bool, detailed: bool
    ) -> list[SandboxUsage]:
        """Sample ``pods`` and tell the listeners (blocking: runs in a worker thread)."""
        samples = [self.collector.sandbox(s, cs, detailed=detailed) for s, cs in pods]
        for listener in self._listeners:
            try:
                listener(list(zip(pods, samples, strict=True)), complete)
            except Exception:  # a listener's bug must not lose the samples
                _log.exception("stats sample listener failed")
        return samples

    @property
    def running(self) -> bool:
        """Whether the background loop is sampling."""
        return self._task is not None and not self._task.done()

    def touch(self) -> None:
        """A stats request came: keep sampling in the background (start it if stopped)."""
        self._last_request = time.monotonic()
        if not self.running and not self._closed:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="crid-stats-sampler"
            )

    async def containers(self, containers: Sequence[Container]) -> list[ContainerUsage]:
        """The usage of each container: cached, or sampled now when missing or stale."""
        self.touch()
        oldest = time.monotonic() - self.max_age
        found: dict[str, ContainerUsage] = {}  # taken now: a refresh may prune meanwhile
        missing = []
        for c in containers:
            entry = self._containers.get(c.id)
            if entry is not None and entry.serves((c,), oldest):
                found[c.id] = entry.usage
            else:
                missing.append(c)
        if missing:
            sampled_at = time.monotonic()
            fresh = await asyncio.to_thread(lambda: [self.collector.container(c) for c in missing])
            for record, usage in zip(missing, fresh, strict=True):
                self._containers[record.id] = _Entry(
                    usage=usage, records=(record,), sampled_at=sampled_at
                )
                found[record.id] = usage
            self.generation += 1
        return [found[c.id] for c in containers]

    async def sandboxes(self, pods: Sequence[Pod], *, detailed: bool = False) -> list[SandboxUsage]:
        """The usage of each pod with its given (running) containers, cached or sampled now;
        ``detailed``: with what pod metrics need (served from the detailed samples)."""
        self.touch()
        now = time.monotonic()
        cache, oldest = self._sandboxes, now - self.max_age
        if detailed:
            self._last_metrics_request = now
            cache, oldest = self._detailed, now - self.metrics_interval - self.max_age
        found: dict[str, SandboxUsage] = {}  # taken now: a refresh may prune meanwhile
        missing: list[Pod] = []
        for sandbox, containers in pods:
            entry = cache.get(sandbox.id)
            if entry is not None and entry.serves((sandbox, *containers), oldest):
                found[sandbox.id] = entry.usage
            else:
                missing.append((sandbox, containers))
        if missing:
            sampled_at = time.monotonic()
            samples = await asyncio.to_thread(self._sample_pods, missing, False, detailed)
            self._store(missing, samples, sampled_at)
            found.update((usage.sandbox_id, usage) for usage in samples)
        return [found[sandbox.id] for sandbox, _ in pods]

    def _store(self, pods: Sequence[Pod], samples: Sequence[SandboxUsage], at: float) -> None:
        for (sandbox, containers), usage in zip(pods, samples, strict=True):
            entry = _Entry(usage=usage, records=(sandbox, *containers), sampled_at=at)
            self._sandboxes[sandbox.id] = entry
            if usage.detailed:
                self._detailed[sandbox.id] = entry
            for record, container_usage in zip(containers, usage.containers, strict=True):
                self._containers[record.id] = _Entry(
                    usage=container_usage, records=(record,), sampled_at=at
                )
        self.generation += 1

    def serves_until(self, sandbox_ids: Sequence[str], container_ids: Sequence[str]) -> float:
        """When the oldest cached sample of these pods and containers stops serving stats
        requests (``time.monotonic()``); -inf when one has none."""
        try:
            oldest = min(
                [self._sandboxes[sid].sampled_at for sid in sandbox_ids]
                + [self._containers[cid].sampled_at for cid in container_ids],
                default=float("inf"),
            )
        except KeyError:
            return -float("inf")
        return oldest + self.max_age

    def _ready_pods(self) -> list[Pod]:
        registry = self.ctx.registry
        running = running_by_pod(registry)
        return [
            (s, running.get(s.id, []))
            for s in registry.sandboxes()
            if s.state == SandboxState.READY
        ]

    async def refresh(self) -> None:
        """Sample every READY pod with its RUNNING containers now; drop removed records."""
        pods = self._ready_pods()
        sampled_at = time.monotonic()
        detailed = (
            sampled_at - self._last_metrics_request <= self.idle_stop
            and sampled_at - self._last_detailed_refresh >= self.metrics_interval
        )
        samples = await asyncio.to_thread(self._sample_pods, pods, True, detailed)
        if detailed:
            self._last_detailed_refresh = sampled_at
        self._store(pods, samples, sampled_at)
        self._prune()
        self.refreshes += 1

    def _prune(self) -> None:
        registry = self.ctx.registry
        containers = registry.containers()
        sandboxes = registry.sandboxes()
        container_ids = {c.id for c in containers}
        sandbox_ids = {s.id for s in sandboxes}
        for cid in [k for k in self._containers if k not in container_ids]:
            del self._containers[cid]
        for cache in (self._sandboxes, self._detailed):
            for sid in [k for k in cache if k not in sandbox_ids]:
                del cache[sid]
        self.generation += 1
        known = {cgroup_dir(c.cgroup_path) for c in containers if c.cgroup_path}
        known |= {cgroup_dir(s.cgroup_parent) for s in sandboxes if s.cgroup_parent}
        self.collector.forget_except(known, container_ids)

    def cached(self) -> tuple[set[str], set[str]]:
        """The ids of the pods and containers that have a sample (for tests and debugging)."""
        return set(self._sandboxes), set(self._containers)

    async def _run(self) -> None:
        watcher = asyncio.get_running_loop().create_task(self._watch_close())
        try:
            while not watcher.done():
                await asyncio.wait([watcher], timeout=self.interval)
                if watcher.done():
                    break
                if time.monotonic() - self._last_request > self.idle_stop:
                    _log.debug("no stats requests for %.0f s: sampler stops", self.idle_stop)
                    break
                try:
                    await self.refresh()
                except Exception:  # a bad sample must not end sampling for good
                    _log.exception("stats refresh failed")
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _watch_close(self) -> None:
        """Return when the context's event bus closes (the daemon is stopping): from then
        on, requests are sampled on demand only and no loop starts again."""
        async for _ in self.ctx.events.subscribe():
            pass
        self._closed = True

    async def stop(self) -> None:
        """Stop the background loop (it starts again on the next stats request)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
