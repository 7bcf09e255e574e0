"""The shared job queue: delayed jobs move into the stream when due; a dead consumer's
entries are taken over after they sat idle; live ones are kept fresh."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from bot.clock import Clock
from bot.keys import Keys
from broadcasts.keys import BroadcastKeys
from broadcasts.queue import SHARDS, Job, JobQueue
from broadcasts.quota import QuotaBook, month_of


def queue(redis: aioredis.Redis, clock: Clock | None = None) -> JobQueue:
    return JobQueue(redis, BroadcastKeys(Keys("t")), clock or Clock())


async def test_deferred_jobs_move_when_due_once(redis: aioredis.Redis) -> None:
    clock = Clock()
    q = queue(redis, clock)
    await q.ensure_group()
    await q.ensure_group()  # idempotent
    now = clock.now()
    await q.defer([Job("poll", 1, "a")], now - 1)
    await q.defer([Job("poll", 1, "b")], now + 3600)
    await q.defer([Job("poll", 1, "a")], now - 2)  # the same job again: still one entry
    assert await q.move_due() == 1
    assert await q.move_due() == 0
    entries = await q.read("c1", 10, 10)
    assert [e.job for e in entries] == [Job("poll", 1, "a")]
    assert await q.next_due() == pytest.approx(now + 3600, abs=0.01)


async def test_dead_consumers_entries_are_taken_over_live_ones_kept(redis: aioredis.Redis) -> None:
    q = queue(redis)
    await q.ensure_group()
    await q.enqueue([Job("send", 7, f"c{i}") for i in range(4)])
    dead = await q.read("dead", 2, 10)
    live = await q.read("live", 2, 10)
    assert len(dead) == len(live) == 2
    await asyncio.sleep(0.3)
    await q.touch("live", [e.id for e in live])  # the live consumer's heartbeat
    taken = await q.take_over("rescuer", 200, 10)
    assert sorted(e.id for e in taken) == sorted(e.id for e in dead)
    await q.ack([e.id for e in taken + live])
    assert await q.pending() == 0
    for shard in range(SHARDS):  # acked entries deleted
        assert await redis.xlen(BroadcastKeys(Keys("t")).stream(shard)) == 0


async def test_jobs_spread_over_the_shards_and_any_consumer_reads_them_all(
    redis: aioredis.Redis,
) -> None:
    q = queue(redis)
    await q.ensure_group()
    jobs = [Job("send", 9, f"chat{i}") for i in range(400)]
    assert await q.enqueue(jobs) == 400
    sizes = [await redis.xlen(BroadcastKeys(Keys("t")).stream(s)) for s in range(SHARDS)]
    assert sum(sizes) == 400 and max(sizes) < 400 * 2 / SHARDS  # no shard takes the bulk
    got: list[Job] = []
    while len(got) < 400:
        batch = await q.read("only", 64, 10)
        assert batch, "a consumer must see every shard"
        got += [e.job for e in batch]
        await q.ack([e.id for e in batch])
    assert sorted(got, key=Job.to_json) == sorted(jobs, key=Job.to_json)
    later = [Job("poll", 9, f"u{i}") for i in range(40)]
    await q.defer(later, Clock().now() - 1)
    assert await q.move_due() == 40 and await q.pending() == 0


async def test_quota_counts_per_group_and_month(redis: aioredis.Redis) -> None:
    book = QuotaBook(redis, BroadcastKeys(Keys("t")), Clock())
    month, days = month_of(Clock().now())
    assert 28 <= days <= 31 and len(month) == 6
    await book.set_known({"a": days - 2, "b": 3})
    await book.record_sends(["a", "b"])
    assert await book.exhausted(["a", "b", "c"]) == []
    await book.record_sends(["a"])
    await book.mark_full(["c"])
    assert await book.exhausted(["a", "b", "c"]) == ["a", "c"]
    assert (await book.used(["b"]))["b"] == 4
