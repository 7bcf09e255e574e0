"""Several `gridbot worker` processes share a broadcast; one is SIGKILLed mid-broadcast while
5 % of WeCom calls fail transiently: every group still gets the notice exactly once."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from redis.exceptions import ConnectionError as RedisConnectionError

from bot.wecom.simulator import FaultConfig, OwnerProfile
from bot.wecom.simulator.config import LatencyConfig
from broadcasts.content import has_marker
from broadcasts.models import PairState
from broadcasts.queue import GROUP, SHARDS
from registry.models import DeliveryKind
from tests.broadcasts.conftest import COUNTY_OFFICER, Env, gridbot
from tests.broadcasts.test_engine import issue

MakeEnv = Callable[..., Awaitable[Env]]
# 离石区 with 400 groups: 360 customer groups, 24 appchats, 16 robots
MID = {"seed": 7, "counties": ("141102",), "total_groups": 400, "residents": 32_000}



async def held_by(env: Env, consumer: str) -> list[object]:
    """Entries `consumer` read and has not acknowledged, over every queue shard."""
    held: list[object] = []
    for shard in range(SHARDS):
        held += await env.redis.xpending_range(env.rt.keys.stream(shard), GROUP, "-", "+", 100,
                                               consumername=consumer)
    return held

async def test_sigkilled_worker_loses_nothing_and_sends_nothing_twice(make_env: MakeEnv) -> None:
    env = await make_env(speed=20, city=MID, profile=OwnerProfile.always((60.0, 120.0)),
                         env={"GRIDBOT_BROADCAST__CLAIM_IDLE_SECONDS": "5"})
    env.sim.set_faults(FaultConfig(rate=0.05, weights={"-1": 1.0, "5xx": 1.0}))
    nid = await issue(env, "通知 紧急预警 范围：离石区 内容：今晚有大风，请关好门窗")
    environ = env.subprocess_env()
    with gridbot(["worker", "--name", "w1"], environ) as w1, \
            gridbot(["worker", "--name", "w2"], environ), \
            gridbot(["worker", "--name", "w3"], environ):
        async def alive() -> bool:
            return all([await env.redis.exists(env.rt.keys.worker_alive(w))
                        for w in ("w1", "w2", "w3")])
        await env.wait(alive, 30, "three workers running")
        assert (await env.service.confirm(COUNTY_OFFICER, nid)).ok
        total = len(env.city.groups)

        async def underway() -> bool:
            counts = await env.rt.state.counts(nid)
            held = await held_by(env, "w1")
            return total - counts.get(PairState.PLANNED, 0) >= total * 0.4 and bool(held)
        await env.wait(underway, 20, "40 % under way, w1 holding jobs")
        w1.send_signal(signal.SIGKILL)
        w1.wait()
        await env.settled(nid, 90)
        dead = await held_by(env, "w1")
        assert dead == []  # its unacknowledged jobs were taken over
        stats = await env.redis.hgetall(env.rt.keys.stats())
        print("fleet:", stats)
        assert int(stats.get("taken_over", 0)) >= 1  # the kill hit w1 with jobs in hand

    pairs = await env.rt.state.pairs(nid)
    states = Counter(r.state for r in pairs.values())
    spent = {c for c, v in env.city.quota_used.items() if v >= 31}
    uncertain = {c for c, r in pairs.items() if r.state is PairState.UNCERTAIN}
    print("states:", dict(states), "faults:", env.sim.records.fault_counts)
    reached = sum(any(has_marker(d.content, nid) for d in env.sim.deliveries_to(c))
                  for c in uncertain)
    print(f"uncertain: {len(uncertain)}, of which the simulator delivered {reached}")
    assert env.sim.records.fault_counts  # faults were injected
    for g in env.city.groups:
        got = [d for d in env.sim.deliveries_to(g.chat_id) if has_marker(d.content, nid)]
        if g.chat_id in spent:
            assert got == []
        elif g.chat_id in uncertain:  # the kill hit between claim and write: never resent,
            assert len(got) <= 1  # named in the report below (rare: the claim runs as the
            # connection is in hand, right before the request is written)
        else:
            assert len(got) == 1, (g.chat_id, g.kind, pairs[g.chat_id], len(got))
    tasks = Counter(t.sender for t in env.sim.tasks() if has_marker(t.text, nid))
    assert set(tasks.values()) == {1}  # one task per owner, even if its creator was killed
    owners = {g.owner for g in env.city.groups
              if g.kind is DeliveryKind.CUSTOMER_GROUP and g.chat_id not in spent}
    assert set(tasks) == owners
    assert states[PairState.DELIVERED] == total - len(spent) - len(uncertain)
    if uncertain:  # reported to the officer by name
        report = "\n".join(d.content for d in env.sim.app_messages_to(COUNTY_OFFICER))
        assert "状态不明" in report
        names = {g.chat_id: g.name for g in env.city.groups}
        assert all(names[c] in report for c in uncertain)


async def test_stop_returns_even_when_a_cancellation_is_swallowed(make_env: MakeEnv) -> None:
    """A cancellation that lands inside a Redis call can come back as a Redis error (seen in
    CI: the heartbeat logged it and looped on, and stop() never returned). The worker's
    helper loops must end on the worker's own signal, not on cancel()."""
    env = await make_env()
    env.start_workers(1)
    worker, task = env.workers[0], env.tasks[0]
    real_touch = worker.rt.queue.touch
    swallowed = 0

    async def touch_that_swallows(consumer: str, ids: list[str]) -> None:
        nonlocal swallowed
        try:
            await asyncio.sleep(0.2)
            await real_touch(consumer, ids)
        except asyncio.CancelledError:
            swallowed += 1
            raise RedisConnectionError("connection closed while cancelling") from None

    worker.rt.queue.touch = touch_that_swallows  # type: ignore[method-assign]
    await asyncio.sleep(worker.beat * 2 + 0.5)  # the heartbeat is in or around touch()
    started = time.monotonic()
    worker.stop()
    await asyncio.wait_for(asyncio.shield(task), 15)
    assert time.monotonic() - started < 10
    assert not await env.redis.exists(env.rt.keys.worker_alive(worker.name))


async def test_stop_with_jobs_in_flight_that_finish_in_time(make_env: MakeEnv) -> None:
    """Stopping while jobs are in flight waits for them; when all finish within the grace the
    worker stops cleanly (seen in CI: an empty set of stragglers was passed to asyncio.wait,
    and the worker's stop raised ValueError)."""
    env = await make_env(speed=20, profile=OwnerProfile.always((1.0, 1.0)),
                         latency=LatencyConfig(median=4.0, p99=5.0, cap=5.0))  # ~0.2 s real
    nid = await issue(env, "通知 紧急预警 范围：交口县 内容：今晚有大风，请关好门窗")
    env.start_workers(1)
    worker, task = env.workers[0], env.tasks[0]
    assert (await env.service.confirm(COUNTY_OFFICER, nid)).ok

    async def busy() -> bool:
        return bool(worker._inflight)
    await env.wait(busy, 20, "jobs in flight")
    worker.stop()
    await asyncio.wait_for(asyncio.shield(task), 15)
    assert task.exception() is None
    assert not worker._inflight
    assert worker.processed >= 1
