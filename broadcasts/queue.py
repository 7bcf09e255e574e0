"""The shared job queue: a Redis stream with one consumer group, plus a sorted set of due work.

Jobs ready now are stream entries that `gridbot worker` processes read with XREADGROUP;
delayed work (retries in seconds, status polls, reminders, the deadline) waits in the `due`
sorted set, scored by its simulated due time, and a script moves it into the stream when due.
A worker that dies leaves its entries pending; any other worker takes them over with
XAUTOCLAIM once they have been idle for `claim_idle_seconds`, while live workers keep their
in-flight entries fresh. Delivery is at least once: every job handler checks the pair state
first, so a job processed twice never sends twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bot.clock import Clock
from bot.rtypes import text
from broadcasts.keys import BroadcastKeys

GROUP = "workers"

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


class JobQueue:
    """Enqueue, defer, read, acknowledge and take over jobs."""

    def __init__(self, redis: aioredis.Redis, keys: BroadcastKeys, clock: Clock) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self._move = redis.register_script(_MOVE_DUE)
        self._add = redis.register_script(_ENQUEUE)

    async def ensure_group(self) -> None:
        """Create the stream and its consumer group if missing."""
        try:
            await self._redis.xgroup_create(self._keys.stream(), GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def enqueue(self, jobs: Iterable[Job]) -> int:
        """Add jobs that are ready now, in order (a script per thousand: one reply each)."""
        batch = [job.to_json() for job in jobs]
        for start in range(0, len(batch), 1000):
            await self._add(keys=[self._keys.stream()], args=batch[start:start + 1000])
        return len(batch)

    async def defer(self, jobs: Iterable[Job], at: float) -> None:
        """Run jobs at simulated time `at`; deferring the same job again just moves it."""
        mapping = {job.to_json(): int(at * 1000) for job in jobs}
        if mapping:
            await self._redis.zadd(self._keys.due(), mapping)

    async def move_due(self, limit: int = 1000) -> int:
        """Move jobs whose time has come into the stream; returns how many."""
        now_ms = int(self._clock.now() * 1000)
        return int(await self._move(keys=[self._keys.due(), self._keys.stream()],
                                     args=[now_ms, limit]))

    async def next_due(self) -> float | None:
        """Simulated time of the earliest deferred job."""
        first = await self._redis.zrange(self._keys.due(), 0, 0, withscores=True)
        return float(first[0][1]) / 1000 if first else None

    async def read(self, consumer: str, count: int, block_ms: int) -> list[Entry]:
        """New entries for `consumer` (blocks up to `block_ms` real milliseconds)."""
        answer: Any = await self._redis.xreadgroup(GROUP, consumer, {self._keys.stream(): ">"},
                                                   count=count, block=block_ms)
        return [Entry(text(eid), Job.from_json(text(f["j"])))
                for _, rows in answer or [] for eid, f in rows]

    async def take_over(self, consumer: str, min_idle_ms: int, count: int) -> list[Entry]:
        """Claim entries other consumers left idle for `min_idle_ms` (a dead worker's jobs)."""
        answer: Any = await self._redis.xautoclaim(self._keys.stream(), GROUP, consumer,
                                                   min_idle_ms, "0-0", count=count)
        return [Entry(text(eid), Job.from_json(text(f["j"])), 2) for eid, f in answer[1] if f]

    async def touch(self, consumer: str, ids: Sequence[str]) -> None:
        """Reset the idle time of entries this consumer is still working on."""
        if ids:
            await self._redis.xclaim(self._keys.stream(), GROUP, consumer, 0, list(ids),
                                     justid=True)

    async def ack(self, ids: Sequence[str]) -> None:
        """Done with these entries: acknowledge and delete them (the stream stays small)."""
        if ids:
            pipe = self._redis.pipeline(transaction=False)
            pipe.xack(self._keys.stream(), GROUP, *ids)
            pipe.xdel(self._keys.stream(), *ids)
            await pipe.execute()

    async def pending(self) -> int:
        """Entries read but not acknowledged, plus deferred jobs and unread entries."""
        info = await self._redis.xpending(self._keys.stream(), GROUP)
        return int(info["pending"]) + int(await self._redis.zcard(self._keys.due()))
