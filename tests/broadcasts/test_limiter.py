"""The Redis sliding-window limiter: exact windows, several ceilings at once, shared by all."""

from __future__ import annotations

import asyncio
import random

import pytest
import redis.asyncio as aioredis

from bot.clock import Clock
from bot.keys import Keys
from broadcasts.keys import BroadcastKeys
from broadcasts.limiter import CeilingTooSmallError, Rate, RateLimiter


def limiter(redis: aioredis.Redis, guard: float = 0.0) -> RateLimiter:
    return RateLimiter(redis, BroadcastKeys(Keys("t")), Clock(), guard=guard)


async def test_grants_up_to_the_limit_then_names_the_wait(redis: aioredis.Redis) -> None:
    lim = limiter(redis)
    rate = [Rate("r", 3, 60.0)]
    for t in (1000.0, 1010.0, 1020.0):
        assert (await lim.take(rate, now=t)).wait == 0.0
    assert (await lim.take(rate, now=1030.0)).wait == pytest.approx(30.0)  # 1000 + 60 - 1030
    assert (await lim.take(rate, now=1059.999)).wait == pytest.approx(0.001, abs=1e-3)
    assert (await lim.take(rate, now=1060.0)).wait == 0.0  # the first entry left the window
    assert await lim.usage(rate, now=1060.0) == [3]


async def test_costs_are_summed_and_the_wait_frees_enough(redis: aioredis.Redis) -> None:
    lim = limiter(redis)
    pt = lambda cost: [Rate("pt", 100, 60.0, cost)]  # noqa: E731
    assert (await lim.take(pt(40), now=0.0)).wait == 0.0
    assert (await lim.take(pt(40), now=10.0)).wait == 0.0
    assert (await lim.take(pt(50), now=20.0)).wait == pytest.approx(40.0)  # t=0 entry frees 40
    assert (await lim.take(pt(90), now=20.0)).wait == pytest.approx(50.0)  # needs both entries
    assert (await lim.take(pt(20), now=20.0)).wait == 0.0
    with pytest.raises(CeilingTooSmallError):
        await lim.take(pt(101), now=30.0)


async def test_all_or_nothing_across_buckets(redis: aioredis.Redis) -> None:
    lim = limiter(redis)
    small, big = Rate("small", 1, 60.0), Rate("big", 10, 60.0)
    assert (await lim.take([small, big], now=0.0)).wait == 0.0
    assert (await lim.take([big, small], now=1.0)).wait == pytest.approx(59.0)
    assert await lim.usage([big], now=1.0) == [1]  # the refused request took nothing


async def test_guard_widens_every_window(redis: aioredis.Redis) -> None:
    lim = limiter(redis, guard=2.0)
    rate = [Rate("g", 1, 60.0)]
    assert (await lim.take(rate, now=0.0)).wait == 0.0
    assert (await lim.take(rate, now=60.0)).wait == pytest.approx(2.0)


async def test_many_concurrent_clients_never_exceed_any_window(redis: aioredis.Redis) -> None:
    """Two 'processes' (limiters) race; replaying the grants shows no window over the limit."""
    a, b = limiter(redis), limiter(redis)
    rng = random.Random(7)
    grants: list[tuple[float, int]] = []
    # each call names its time; hand out increasing times to the racing clients
    clock = iter(sorted(rng.uniform(0, 300) for _ in range(400)))

    async def ordered(lim: RateLimiter) -> None:
        for _ in range(200):
            t = next(clock)
            cost = rng.randint(1, 30)
            if (await lim.take([Rate("m", 200, 60.0, cost), Rate("c", 20, 60.0)],
                                     now=t)).wait == 0.0:
                grants.append((t, cost))

    await asyncio.gather(ordered(a), ordered(b))
    assert len(grants) > 40
    for start, _ in grants:
        inside = [(t, c) for t, c in grants if start <= t < start + 60.0]
        assert sum(c for _, c in inside) <= 200
        assert len(inside) <= 20


async def test_a_restamp_moves_the_grant_later_never_earlier(redis: aioredis.Redis) -> None:
    lim = limiter(redis, guard=1.0)
    rate = [Rate("s", 100, 60.0, 100)]
    grant = await lim.take(rate, now=0.0)
    assert grant.granted
    await lim.restamp(grant, now=5.0)  # the answer came back 5 s after the grant
    await lim.restamp(grant, now=2.0)  # an earlier time changes nothing
    assert (await lim.take(rate, now=61.0)).wait == pytest.approx(5.0)  # 5 + 60 + 1 - 61
    assert await lim.usage(rate, now=61.0) == [100]
    assert (await lim.take(rate, now=66.0)).wait == 0.0


async def test_a_call_slower_than_the_window_is_counted_again(redis: aioredis.Redis) -> None:
    lim = limiter(redis)
    rate = [Rate("w", 10, 60.0, 4)]
    grant = await lim.take(rate, now=0.0)
    assert await lim.usage(rate, now=70.0) == [0]  # the window dropped it meanwhile
    await lim.restamp(grant, now=70.0)  # WeCom counted it within the call: count it again
    assert await lim.usage(rate, now=70.0) == [4]
    assert await lim.usage(rate, now=131.0) == [0]


async def test_a_refused_request_has_nothing_to_restamp(redis: aioredis.Redis) -> None:
    lim = limiter(redis)
    rate = [Rate("n", 1, 60.0)]
    assert (await lim.take(rate, now=0.0)).granted
    refused = await lim.take(rate, now=1.0)
    assert not refused.granted and refused.wait == pytest.approx(59.0)
    await lim.restamp(refused, now=2.0)
    assert await lim.usage(rate, now=2.0) == [1]


async def test_a_call_whose_restamp_finds_redis_gone_keeps_its_outcome(
        redis: aioredis.Redis, unused_tcp_port: int) -> None:
    """A failover between the call and its re-stamp: the call's answer (here, that it was
    sent) must come through; the entries keep counting from the grant."""
    keys = BroadcastKeys(Keys("t"))
    grant = await RateLimiter(redis, keys, Clock()).take([Rate("r", 5, 60.0)], now=1.0)
    gone = aioredis.Redis(port=unused_tcp_port, socket_connect_timeout=0.5)
    sent = False
    async with RateLimiter(gone, keys, Clock()).restamped(grant):
        sent = True
    await gone.aclose()
    assert sent
    assert await limiter(redis).usage([Rate("r", 5, 60.0)], now=60.5) == [1], "from the grant"
