"""SingleFlight: one task per key, joined by concurrent callers, cancelled by the last."""

from __future__ import annotations

import asyncio

import pytest

from ociimage.singleflight import SingleFlight


async def test_concurrent_callers_share_one_run_and_the_key_is_forgotten_after() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    runs = 0
    release = asyncio.Event()

    async def work() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return 42

    first = asyncio.ensure_future(flights.run("k", work))
    second = asyncio.ensure_future(flights.run("k", work))
    await asyncio.sleep(0)
    assert flights.in_flight("k") and not flights.in_flight("other")
    release.set()
    assert await first == (42, True)
    assert await second == (42, False)
    assert runs == 1
    await asyncio.sleep(0)
    assert not flights.in_flight("k")
    assert await flights.run("k", work) == (42, True)
    assert runs == 2


async def test_a_cancelled_caller_leaves_the_work_to_the_others_the_last_stops_it() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    started = asyncio.Event()
    cancelled = asyncio.Event()
    release = asyncio.Event()

    async def work() -> int:
        started.set()
        try:
            await release.wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 7

    first = asyncio.ensure_future(flights.run("k", work))
    second = asyncio.ensure_future(flights.run("k", work))
    await started.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert not cancelled.is_set()
    release.set()
    assert await second == (7, False)

    release.clear()
    started.clear()
    only = asyncio.ensure_future(flights.run("j", work))
    await started.wait()
    only.cancel()
    with pytest.raises(asyncio.CancelledError):
        await only
    assert cancelled.is_set()
    assert not flights.in_flight("j")


async def test_an_error_reaches_every_caller() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    gate = asyncio.Event()

    async def fail() -> int:
        await gate.wait()
        raise ValueError("boom")

    callers = [asyncio.ensure_future(flights.run("k", fail)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
