"""The stats cache: answers from background samples, resamples changed records, forgets
removed ones, measures writable layers rarely, and stops with the daemon."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncIterator, Sequence

import pytest

from crid.config import Config
from crid.context import Context
from crid.server import Daemon
from crid.state import Container, ContainerMeta, ContainerState
from crid.stats import Pod, SandboxUsage, StatsSampler

from ._observe import container, pod, wait_until

pytestmark = [pytest.mark.root, pytest.mark.binaries("runc", "conmon", "/bin/busybox")]

MiB = 1 << 20


@pytest.fixture
async def ctx(config: Config) -> AsyncIterator[Context]:
    running = Daemon(config)
    await running.start()
    try:
        assert running.context is not None
        yield running.context
    finally:
        await running.stop(grace=0)


async def test_cached_samples_are_refreshed_in_the_background(ctx: Context) -> None:
    sampler = StatsSampler.of(ctx)
    assert sampler is StatsSampler.of(ctx)
    assert not sampler.running  # nothing sampled before the first stats request
    async with pod(ctx) as sandbox, container(ctx, sandbox, ["sleep", "60"]) as record:
        [first] = await sampler.containers([record])
        assert sampler.running
        assert first.memory.working_set_bytes is not None
        [again] = await sampler.containers([record])
        assert again is first  # served from the cache, not read again
        # The background loop takes the next sample, with a CPU rate against the first.
        await wait_until(lambda: sampler.refreshes >= 1, timeout=5)
        [later] = await sampler.containers([record])
        assert later.cpu.timestamp_ns > first.cpu.timestamp_ns
        assert later.cpu.usage_nano_cores is not None
        [pod_usage] = await sampler.sandboxes([(sandbox, [record])])
        assert [c.container_id for c in pod_usage.containers] == [record.id]


async def test_a_changed_record_is_sampled_again(ctx: Context) -> None:
    sampler = StatsSampler(ctx, interval=60)  # no background refresh during the test
    async with pod(ctx) as sandbox, container(ctx, sandbox, ["sleep", "60"]) as record:
        [first] = await sampler.sandboxes([(sandbox, [record])])
        [cached] = await sampler.sandboxes([(sandbox, [record])])
        assert cached is first
        changed = dataclasses.replace(sandbox, labels={"new": "label"})
        [fresh] = await sampler.sandboxes([(changed, [record])])
        assert fresh is not first
        assert fresh.cpu.timestamp_ns > first.cpu.timestamp_ns
        # A pod asked about with another set of containers is sampled again, too.
        [without] = await sampler.sandboxes([(changed, [])])
        assert without.containers == ()
        await sampler.stop()


async def test_old_samples_are_taken_again_on_demand(ctx: Context) -> None:
    sampler = StatsSampler(ctx, interval=60, max_age=0.2)
    async with pod(ctx) as sandbox, container(ctx, sandbox, ["sleep", "60"]) as record:
        [first] = await sampler.containers([record])
        await asyncio.sleep(0.3)
        [second] = await sampler.containers([record])
        assert second.cpu.timestamp_ns > first.cpu.timestamp_ns
        await sampler.stop()


async def test_writable_layer_is_measured_at_most_every_layer_interval(ctx: Context) -> None:
    sampler = StatsSampler(ctx, interval=60, max_age=0)
    script = "touch /tmp/started; sleep 60"
    async with pod(ctx) as sandbox, container(ctx, sandbox, ["sh", "-c", script]) as record:
        rootfs = await ctx.store.mount_container(record.id)
        await wait_until(lambda: (rootfs / "tmp" / "started").exists())
        [first] = await sampler.containers([record])
        assert first.writable_layer is not None
        (rootfs / "tmp" / "blob").write_bytes(b"x" * (2 * MiB))
        [second] = await sampler.containers([record])  # cgroups read again, the layer not
        assert second.cpu.timestamp_ns > first.cpu.timestamp_ns
        assert second.writable_layer == first.writable_layer
        sampler.collector.layer_interval_ns = 0
        [third] = await sampler.containers([record])
        assert third.writable_layer is not None
        assert third.writable_layer.used_bytes >= first.writable_layer.used_bytes + 2 * MiB
        await sampler.stop()


async def test_a_layer_that_cannot_be_measured_is_asked_again_only_after_the_interval(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = StatsSampler(ctx, interval=60).collector
    store = ctx.store.store
    asked: list[str] = []
    measure = store.container_usage

    def counted(container_id: str) -> object:
        asked.append(container_id)
        return measure(container_id)

    monkeypatch.setattr(store, "container_usage", counted)
    unknown = "0" * 64  # no such container in the store: its measure fails
    record = Container(
        id=unknown,
        name="k8s_c_unknown",
        sandbox_id="1" * 64,
        meta=ContainerMeta(name="c"),
        state=ContainerState.EXITED,
        created_at=0,
    )
    assert collector.container(record).writable_layer is None
    assert collector.container(record).writable_layer is None
    assert asked == [unknown]  # not a failed lookup every round
    collector.layer_interval_ns = 0
    assert collector.container(record).writable_layer is None
    assert asked == [unknown, unknown]


async def test_removed_records_are_forgotten(ctx: Context) -> None:
    sampler = StatsSampler(ctx, interval=60)
    async with pod(ctx) as sandbox:
        async with container(ctx, sandbox, ["sleep", "60"]) as record:
            await sampler.refresh()
            assert sampler.cached() == ({sandbox.id}, {record.id})
            assert len(sampler.collector.rates) == 2  # the pod's and the container's cgroup
        await sampler.refresh()
        assert sampler.cached() == ({sandbox.id}, set())
        assert len(sampler.collector.rates) == 1
    await sampler.refresh()
    assert sampler.cached() == (set(), set())
    assert len(sampler.collector.rates) == 0
    await sampler.stop()


async def test_the_loop_ends_when_the_daemon_closes_its_event_bus(ctx: Context) -> None:
    sampler = StatsSampler(ctx, interval=0.05)
    await sampler.sandboxes([])
    assert sampler.running
    await wait_until(lambda: sampler.refreshes >= 2, timeout=5)
    ctx.events.close()
    await wait_until(lambda: not sampler.running, timeout=5)
    async with pod(ctx) as sandbox:
        [usage] = await sampler.sandboxes([(sandbox, [])])  # still answered, on demand...
        assert usage.memory.usage_bytes is not None
    assert not sampler.running  # ...and sampling does not start again after shutdown


async def test_the_loop_stops_when_nobody_asks(ctx: Context) -> None:
    sampler = StatsSampler(ctx, interval=0.05, idle_stop=0.2)
    await sampler.containers([])
    assert sampler.running
    await wait_until(lambda: not sampler.running, timeout=5)
    await sampler.containers([])  # the next request starts it again
    assert sampler.running
    await sampler.stop()
    assert not sampler.running


async def test_listeners_see_every_batch_in_the_worker_thread(ctx: Context) -> None:
    sampler = StatsSampler(ctx, interval=60)
    seen: list[tuple[list[str], bool, bool]] = []

    def listener(samples: Sequence[tuple[Pod, SandboxUsage]], complete: bool) -> None:
        on_worker = threading.current_thread() is not threading.main_thread()
        ids = [
            usage.sandbox_id for (sandbox, _), usage in samples if sandbox.id == usage.sandbox_id
        ]
        seen.append((ids, complete, on_worker))

    sampler.add_listener(listener)
    async with pod(ctx) as sandbox, container(ctx, sandbox, ["sleep", "60"]) as record:
        await sampler.sandboxes([(sandbox, [record])])
        await sampler.sandboxes([(sandbox, [record])])  # cached: no new batch
        await sampler.refresh()
    assert seen == [([sandbox.id], False, True), ([sandbox.id], True, True)]
    await sampler.stop()


async def test_detailed_samples_only_while_metrics_are_asked_for(ctx: Context) -> None:
    sampler = StatsSampler(ctx, interval=0.05, metrics_interval=0.5)
    seen: list[bool] = []

    def listen(samples: Sequence[tuple[Pod, SandboxUsage]], complete: bool) -> None:
        if complete:
            seen.extend(usage.detailed for _, usage in samples)

    sampler.add_listener(listen)
    async with pod(ctx) as sandbox, container(ctx, sandbox, ["sleep", "60"]) as record:
        [plain] = await sampler.sandboxes([(sandbox, [record])])
        assert not plain.detailed and plain.details is None  # stats never pay for metrics
        await wait_until(lambda: len(seen) >= 5, timeout=5)
        assert not any(seen)
        [detailed] = await sampler.sandboxes([(sandbox, [record])], detailed=True)
        assert detailed.detailed and detailed.details is not None
        assert detailed.containers[0].processes is not None
        [again] = await sampler.sandboxes([(sandbox, [record])], detailed=True)
        assert again is detailed  # served from the detailed cache
        # Stats keep coming from the frequent plain refreshes meanwhile.
        seen.clear()
        await wait_until(lambda: seen.count(True) >= 2, timeout=10)
        plain_rounds = seen.count(False)
        assert plain_rounds >= 2 * seen.count(True)  # one detailed round per metrics_interval
        [stats] = await sampler.sandboxes([(sandbox, [record])])
        assert stats.cpu.timestamp_ns > detailed.cpu.timestamp_ns
        await sampler.stop()
