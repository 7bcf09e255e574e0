"""The shared job queue: SHARDS Redis streams, each with one consumer group and a sorted set
of due work beside it (same hash tag), so a cluster spreads the queue over its primaries.

A job's shard is fixed by its content (CRC-32 of its JSON), so deferring the same job again
moves it within one due set. Jobs ready now are stream entries that `gridbot worker`
processes read with XREADGROUP from every shard (one pipelined round trip; any worker serves
any shard); delayed work (retries in seconds, status polls, reminders, the deadline) waits in
its shard's `due` sorted set, scored by its simulated due time, and a script per shard moves
it into that shard's stream when due. A worker that dies leaves its entries pending; any
other worker takes them over with XAUTOCLAIM (per shard) once they have been idle for
`claim_idle_seconds`, while live workers keep their in-flight entries fresh. An entry's id
names its shard ("<shard>/<stream id>"). Delivery is at least once: every job handler checks
the pair state first, so a job processed twice never sends twice.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bot.batching import eval_many
from bot.clock import Clock
from bot.rtypes import text
from broadcasts.keys import BroadcastKeys

GROUP = "workers"
SHARDS = 8  # fixed: a job's shard must not change while it waits
IDLE_POLL_SECONDS = 0.05  # nothing to read: look again after this (a cluster has no
# blocking read across shards)

_ENQUEUE = """
for i = 1, #ARGV do redis.call('XADD', KEYS[1], '*', 'j', ARGV[i]) end
return #ARGV
"""

_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, job in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'j', job)
  redis.call('ZREM', KEYS[1], job)
end
return #due
"""


@dataclass(frozen=True, slots=True)
class Job:
    """One unit of work: `kind` (start, send, task, owner_msg, poll, remind, escalate,
    deadline, final, reconcile), the notice, and what it is about (a chat, a unit, a stage)."""

    kind: str
    notice: int
    ref: str = ""

    def to_json(self) -> str:
        return json.dumps([self.kind, self.notice, self.ref], ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str) -> Job:
        kind, notice, ref = json.loads(data)
        return cls(str(kind), int(notice), str(ref))


@dataclass(frozen=True, slots=True)
class Entry:
    """A job read from the stream, with the id to acknowledge."""

    id: str
    job: Job
    deliveries: int = 1


def shard_of(job: Job) -> int:
    return zlib.crc32(job.to_json().encode()) % SHARDS


def _split(entry_id: str) -> tuple[int, str]:
    shard, _, eid = entry_id.partition("/")
    return int(shard), eid


def _by_shard(ids: Iterable[str]) -> dict[int, list[str]]:
    grouped: dict[int, list[str]] = defaultdict(list)
    for entry_id in ids:
        shard, eid = _split(entry_id)
        grouped[shard].append(eid)
    return grouped


class JobQueue:
    """Enqueue, defer, read, acknowledge and take over jobs."""

    def __init__(self, redis: aioredis.Redis, keys: BroadcastKeys, clock: Clock) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self._move = redis.register_script(_MOVE_DUE)
        self._add = redis.register_script(_ENQUEUE)
        self._streams = [keys.stream(i) for i in range(SHARDS)]
        self._turn = 0

    async def ensure_group(self) -> None:
        """Create the streams and their consumer groups if missing."""
        for stream in self._streams:
            try:
                await self._redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise

    async def enqueue(self, jobs: Iterable[Job]) -> int:
        """Add jobs that are ready now, in order within a shard (a script call per thousand
        jobs of a shard, all in one pipelined round trip)."""
        per_shard: dict[int, list[str]] = defaultdict(list)
        for job in jobs:
            per_shard[shard_of(job)].append(job.to_json())
        calls = [([self._streams[shard]], batch[start:start + 1000])
                 for shard, batch in per_shard.items() for start in range(0, len(batch), 1000)]
        if calls:
            _raise_any(await eval_many(self._redis, str(self._add.script), self._add.sha,
                                       calls))
        return sum(len(batch) for batch in per_shard.values())

    async def defer(self, jobs: Iterable[Job], at: float) -> None:
        """Run jobs at simulated time `at`; deferring the same job again just moves it."""
        per_shard: dict[int, dict[str, int]] = defaultdict(dict)
        for job in jobs:
            per_shard[shard_of(job)][job.to_json()] = int(at * 1000)
        if per_shard:
            pipe = self._redis.pipeline(transaction=False)
            for shard, mapping in per_shard.items():
                pipe.zadd(self._keys.due(shard), mapping)
            await pipe.execute()

    async def move_due(self, limit: int = 1000) -> int:
        """Move jobs whose time has come into their streams; returns how many."""
        now_ms = int(self._clock.now() * 1000)
        calls = [([self._keys.due(i), self._streams[i]], [now_ms, limit]) for i in range(SHARDS)]
        moved = await eval_many(self._redis, str(self._move.script), self._move.sha, calls)
        return sum(int(n) for n in _raise_any(moved))

    async def next_due(self) -> float | None:
        """Simulated time of the earliest deferred job."""
        pipe = self._redis.pipeline(transaction=False)
        for i in range(SHARDS):
            pipe.zrange(self._keys.due(i), 0, 0, withscores=True)
        firsts = [float(rows[0][1]) for rows in await pipe.execute() if rows]
        return min(firsts) / 1000 if firsts else None

    async def read(self, consumer: str, count: int, block_ms: int) -> list[Entry]:
        """At most `count` new entries for `consumer`, looking at every shard before it waits
        (up to `block_ms` real milliseconds) for more."""
        loop = asyncio.get_running_loop()
        deadline, entries, visited = loop.time() + block_ms / 1000, list[Entry](), 0
        while len(entries) < count:
            shares = self._shares(count - len(entries))
            pipe = self._redis.pipeline(transaction=False)
            for shard, share in shares:
                pipe.xreadgroup(GROUP, consumer, {self._streams[shard]: ">"}, count=share)
            answers: list[Any] = await pipe.execute()
            entries += [Entry(f"{shard}/{text(eid)}", Job.from_json(text(f["j"])))
                        for (shard, _), answer in zip(shares, answers, strict=True)
                        for _, rows in answer or [] for eid, f in rows]
            visited += len(shares)
            if visited < SHARDS:
                continue
            left = deadline - loop.time()
            if entries or left <= 0:
                break
            visited = 0
            await asyncio.sleep(min(IDLE_POLL_SECONDS, left))
        return entries

    def _shares(self, count: int) -> list[tuple[int, int]]:
        """(shard, entries to read) summing to `count`, starting where the last read stopped,
        so that a small `count` still visits every shard in turn."""
        base, extra = divmod(count, SHARDS)
        order = [(self._turn + i) % SHARDS for i in range(SHARDS)]
        shares = [(shard, base + (i < extra)) for i, shard in enumerate(order)
                  if base + (i < extra) > 0]
        self._turn = (self._turn + len(shares)) % SHARDS
        return shares

    async def take_over(self, consumer: str, min_idle_ms: int, count: int) -> list[Entry]:
        """Claim entries other consumers left idle for `min_idle_ms` (a dead worker's jobs)."""
        pipe = self._redis.pipeline(transaction=False)
        for stream in self._streams:
            pipe.xautoclaim(stream, GROUP, consumer, min_idle_ms, "0-0", count=count)
        answers: list[Any] = await pipe.execute()
        return [Entry(f"{shard}/{text(eid)}", Job.from_json(text(f["j"])), 2)
                for shard, answer in enumerate(answers) for eid, f in answer[1] if f]

    async def consumers(self) -> list[str]:
        """Consumers of the group that hold pending entries."""
        info = await self._redis.xpending(self._keys.stream(), GROUP)
        return [text(c["name"]) for c in info.get("consumers") or []]

    async def claim_all(self, consumer: str, owner: str, count: int = 1000) -> list[Entry]:
        """Take every pending entry of `owner` now, whatever its idle time (a worker known
        to be dead)."""
        rows: Any = await self._redis.xpending_range(self._keys.stream(), GROUP, "-", "+",
                                                     count, consumername=owner)
        ids: list[int | bytes | str | memoryview[int]] = [text(r["message_id"]) for r in rows]
        if not ids:
            return []
        answer: Any = await self._redis.xclaim(self._keys.stream(), GROUP, consumer, 0, ids)
        return [Entry(text(eid), Job.from_json(text(f["j"])), 2) for eid, f in answer if f]

    async def touch(self, consumer: str, ids: Sequence[str]) -> None:
        """Reset the idle time of entries this consumer is still working on."""
        if ids:
            pipe = self._redis.pipeline(transaction=False)
            for shard, eids in _by_shard(ids).items():
                pipe.xclaim(self._streams[shard], GROUP, consumer, 0, list[Any](eids),
                            justid=True)
            await pipe.execute()

    async def ack(self, ids: Sequence[str]) -> None:
        """Done with these entries: acknowledge and delete them (the streams stay small)."""
        if ids:
            pipe = self._redis.pipeline(transaction=False)
            for shard, eids in _by_shard(ids).items():
                pipe.xack(self._streams[shard], GROUP, *eids)
                pipe.xdel(self._streams[shard], *eids)
            await pipe.execute()

    async def pending(self) -> int:
        """Entries read but not acknowledged, plus deferred jobs and unread entries."""
        pipe = self._redis.pipeline(transaction=False)
        for i, stream in enumerate(self._streams):
            pipe.xpending(stream, GROUP)
            pipe.zcard(self._keys.due(i))
        replies: list[Any] = await pipe.execute()  # XPENDING summary, ZCARD, per shard
        return sum(int(info["pending"]) for info in replies[0::2]) + sum(map(int, replies[1::2]))


def _raise_any(results: list[Any]) -> list[Any]:
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results
