"""Notices in Redis: numbered records whose status only moves by compare-and-set.

Numbers come from INCR, so they are short enough to type (`确认 17`). A status change names
the statuses it may leave: two processes (two `gridbot serve` firing one scheduled notice, an
officer double-tapping 确认) cannot both release a notice.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping

import redis.asyncio as aioredis

from bot.clock import Clock
from bot.rtypes import slist, smap
from broadcasts.keys import BroadcastKeys
from broadcasts.models import Notice, NoticeStatus

_CAS = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
local allowed = cjson.decode(ARGV[1])
for _, s in ipairs(allowed) do
  if s == status then
    for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
    return 1
  end
end
return 0
"""

_MAX = """
local v = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > v then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0
"""


class NoticeStore:
    """Create, read and change notices."""

    def __init__(self, redis: aioredis.Redis, keys: BroadcastKeys, clock: Clock) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self._cas = redis.register_script(_CAS)
        self._max = redis.register_script(_MAX)

    async def next_id(self) -> int:
        return int(await self._redis.incr(self._keys.seq()))

    async def save(self, notice: Notice) -> None:
        """Write the whole record and index it (creation, or fields no other step changes).

        The record and its two indexes live in three slots (no MULTI on a cluster): the record
        is written first, so an index never names a notice that is not there; a crash in
        between leaves a record no list shows, which a repeated save indexes."""
        await self._redis.hset(self._keys.meta(notice.id),
                               mapping=notice.to_hash())  # type: ignore[arg-type]
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(self._keys.index(), {str(notice.id): notice.created_at})
        pipe.zadd(self._keys.by_issuer(notice.issuer), {str(notice.id): notice.created_at})
        await pipe.execute()

    async def get(self, notice_id: int) -> Notice | None:
        raw = smap(await self._redis.hgetall(self._keys.meta(notice_id)))
        return Notice.from_hash(raw) if raw else None

    async def move(self, notice_id: int, from_: Collection[NoticeStatus], to: NoticeStatus,
                   fields: Mapping[str, str] | None = None) -> bool:
        """Set status `to` (and `fields`) only if the status is one of `from_`."""
        args: list[str] = [json.dumps([s.value for s in from_]), "status", to.value]
        for name, value in (fields or {}).items():
            args += [name, value]
        return int(await self._cas(keys=[self._keys.meta(notice_id)], args=args)) == 1

    async def set_fields(self, notice_id: int, fields: Mapping[str, str]) -> None:
        await self._redis.hset(self._keys.meta(notice_id), mapping=dict(fields))  # type: ignore[arg-type]

    async def latest_of(self, userid: str, count: int = 1) -> list[int]:
        """Ids of the newest notices `userid` issued."""
        ids = slist(await self._redis.zrevrange(self._keys.by_issuer(userid), 0, count - 1))
        return [int(i) for i in ids]

    async def add_followup(self, parent: int, child: int) -> None:
        await self._redis.rpush(self._keys.followups(parent), str(child))

    async def followups(self, parent: int) -> list[int]:
        ids = slist(await self._redis.lrange(self._keys.followups(parent), 0, -1))
        return [int(i) for i in ids]

    async def mark_once(self, notice_id: int, name: str, value: str = "1") -> bool:
        """True only for the first caller to set marker `name` (one-shot reports, firing)."""
        return bool(await self._redis.hsetnx(self._keys.marks(notice_id), name, value))

    async def marked(self, notice_id: int, name: str) -> bool:
        return bool(await self._redis.hexists(self._keys.marks(notice_id), name))

    async def marks(self, notice_id: int) -> dict[str, str]:
        return smap(await self._redis.hgetall(self._keys.marks(notice_id)))

    async def count(self, notice_id: int, name: str) -> int:
        """Increment counter `name` in the marks hash; returns the new value."""
        return int(await self._redis.hincrby(self._keys.marks(notice_id), name, 1))

    async def step_done(self, notice_id: int, step: str, at: float) -> None:
        """Remember the latest time a machine step of kind `step` finished (bench, progress)."""
        await self._max(keys=[self._keys.steps(notice_id)], args=[step, repr(at)])

    async def steps(self, notice_id: int) -> dict[str, float]:
        raw = smap(await self._redis.hgetall(self._keys.steps(notice_id)))
        return {k: float(v) for k, v in raw.items()}
