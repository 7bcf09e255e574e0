"""bot/lease.py on the real redis-server: holders take turns, a crashed holder's lease
lapses, and only the holder releases it."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from bot.lease import LeaseBusyError, lease

KEY = "gridbot:test:lease"


async def test_holders_take_turns(redis: aioredis.Redis) -> None:
    order: list[str] = []

    async def hold(name: str) -> None:
        async with lease(redis, KEY, ms=2000, wait_s=2.0):
            order.append(f"{name}+")
            await asyncio.sleep(0.05)
            order.append(f"{name}-")

    await asyncio.gather(hold("a"), hold("b"))
    assert order in (["a+", "a-", "b+", "b-"], ["b+", "b-", "a+", "a-"])
    assert await redis.exists(KEY) == 0


async def test_a_crashed_holders_lease_lapses_and_a_busy_one_is_said(
        redis: aioredis.Redis) -> None:
    await redis.set(KEY, "crashed-holder", px=300)  # taken, never released
    with pytest.raises(LeaseBusyError):
        async with lease(redis, KEY, ms=1000, wait_s=0.1):
            pass
    started = time.monotonic()
    async with lease(redis, KEY, ms=1000, wait_s=2.0) as token:
        assert await redis.get(KEY) == token
    assert 0.1 < time.monotonic() - started < 1.5
    assert await redis.exists(KEY) == 0


async def test_an_outlived_lease_frees_nobody_elses(redis: aioredis.Redis) -> None:
    async with lease(redis, KEY, ms=100, wait_s=1.0):
        await asyncio.sleep(0.2)  # ours lapsed; another took the key meanwhile
        await redis.set(KEY, "next-holder", px=5000)
    assert await redis.get(KEY) == "next-holder"
    await redis.delete(KEY)
