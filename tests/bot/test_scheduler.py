"""The shared scheduler: each run fires in exactly one of several schedulers."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot import appkeys
from bot.app import create_app
from bot.clock import Clock
from bot.keys import Keys
from bot.scheduler import Scheduler, job_context
from bot.settings import Settings
from tests.bot.jobs import FIRED
from tests.bot.support import ROOT, wait_until

JOB = "tests.bot.jobs:record_fire"


@pytest.fixture
async def two(redis_url: str, redis: aioredis.Redis, keys: Keys
              ) -> AsyncIterator[tuple[Scheduler, Scheduler]]:
    clock = Clock()
    pair = (Scheduler(redis_url, keys, clock), Scheduler(redis_url, keys, clock))
    for scheduler in pair:
        scheduler.start()
    yield pair
    for scheduler in pair:
        scheduler.shutdown()
    await asyncio.sleep(0.01)


async def fired(redis: aioredis.Redis) -> list[tuple[str, str, float]]:
    rows = await redis.lrange(FIRED, 0, -1)  # type: ignore[misc]
    return [(tag, who, float(at)) for tag, who, at in (row.split("|") for row in rows)]


async def test_date_jobs_fire_exactly_once_with_two_schedulers(
    two: tuple[Scheduler, Scheduler], redis: aioredis.Redis, redis_url: str
) -> None:
    a, b = two
    due = time.time() + 0.6
    for n in range(20):
        (a if n % 2 else b).add_date_job(f"job-{n}", due, JOB, {"url": redis_url, "tag": str(n)})

    async def all_fired() -> bool:
        return len(await fired(redis)) >= 20

    await wait_until(all_fired, timeout=5, what="20 runs")
    await asyncio.sleep(1.2)  # a second firing would have happened by now
    runs = await fired(redis)
    assert sorted(Counter(tag for tag, _, _ in runs).items()) == sorted(
        (str(n), 1) for n in range(20))
    assert all(at >= due - 0.05 for _, _, at in runs)
    assert a.job_ids() == [] and b.job_ids() == []


async def test_date_jobs_fire_exactly_once_across_three_processes(
    redis: aioredis.Redis, redis_url: str
) -> None:
    due = time.time() + 3.5  # time for three interpreters to start on a busy 2-core machine
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.bot.scheduler_proc", redis_url, str(due), str(due + 2.5),
        "30", cwd=ROOT) for _ in range(3)]
    try:
        codes = await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), 15)
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
    assert codes == [0, 0, 0]
    runs = await fired(redis)
    assert sorted(Counter(tag for tag, _, _ in runs).items()) == sorted(
        (str(n), 1) for n in range(30))
    assert all(due - 0.05 <= at < due + 2.0 for _, _, at in runs)


async def test_a_job_added_elsewhere_is_seen_within_a_second(
    redis_url: str, redis: aioredis.Redis, keys: Keys
) -> None:
    runner = Scheduler(redis_url, keys, Clock())
    runner.start()
    adder = Scheduler(redis_url, keys, Clock())
    adder.start(paused=True)  # an add-only process (CLI): never fires
    try:
        adder.add_date_job("soon", time.time() + 0.2, JOB, {"url": redis_url, "tag": "soon"})

        async def ran() -> bool:
            return len(await fired(redis)) == 1

        await wait_until(ran, timeout=2.5, what="the run")
        [(_, who, _)] = await fired(redis)
        assert who.endswith(f":{id(runner)}")
    finally:
        runner.shutdown()
        adder.shutdown()
        await asyncio.sleep(0.01)


async def test_interval_job_runs_once_per_tick_and_respects_clock_speed(
    redis_url: str, redis: aioredis.Redis, keys: Keys
) -> None:
    clock = Clock(speed=60.0, origin=time.time())  # 30 simulated seconds = 0.5 s
    pair = [Scheduler(redis_url, keys, clock) for _ in range(2)]
    for scheduler in pair:
        scheduler.start()
    try:
        pair[0].add_interval_job("tick", 30, JOB, {"url": redis_url, "tag": "tick"})
        next_run = pair[0].next_run("tick")
        assert next_run is not None and abs(next_run - (clock.now() + 30)) < 2
        await asyncio.sleep(1.8)
        pair[1].remove_job("tick")
        await asyncio.sleep(0.7)
    finally:
        for scheduler in pair:
            scheduler.shutdown()
        await asyncio.sleep(0.01)
    times = sorted(at for _, _, at in await fired(redis))
    assert 2 <= len(times) <= 4
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.35 < gap < 0.65 for gap in gaps)  # one run per 0.5 s tick, never two


async def test_replacing_and_removing_jobs(
    two: tuple[Scheduler, Scheduler], redis: aioredis.Redis, redis_url: str
) -> None:
    a, b = two
    a.add_date_job("x", time.time() + 60, JOB, {"url": redis_url, "tag": "old"})
    b.add_date_job("x", time.time() + 0.3, JOB, {"url": redis_url, "tag": "new"})
    a.add_date_job("gone", time.time() + 0.3, JOB, {"url": redis_url, "tag": "gone"})
    assert b.remove_job("gone") and not a.remove_job("gone")
    await asyncio.sleep(1.5)
    assert [tag for tag, _, _ in await fired(redis)] == ["new"]


async def test_jobs_of_the_app_scheduler_reach_the_app_services(
    aiohttp_client: Any, make_settings: Callable[..., Settings], redis: aioredis.Redis
) -> None:
    client = await aiohttp_client(create_app(make_settings(), [], run_consumer=False))
    scheduler = client.app[appkeys.scheduler]
    scheduler.add_date_job("via-app", time.time() + 0.2, "tests.bot.jobs:record_via_app",
                           {"tag": "通过应用"})

    async def ran() -> bool:
        return bool(await fired(redis))

    await wait_until(ran, timeout=3, what="the job")
    assert [(tag, who) for tag, who, _ in await fired(redis)] == [("通过应用", "app")]


def test_job_context_outside_a_job_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="定时任务"):
        job_context()
