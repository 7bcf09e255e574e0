"""Redis reads and writes of matters, their roll and ballots, and draws.

A ballot is cast by one script on the matter's hash tag: it checks the matter is open and not
past its closing time, that the voter is on the roll and the option exists, refuses a second
ballot unless changes are allowed, numbers the ballot and appends its canonical entry — so
concurrent casts from any number of processes count each voter once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from bot.rtypes import hmapping, slist, smap, text
from deliberation.keys import DelibKeys
from deliberation.models import Matter, Status, Voter

_CAST = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'open' then return {'closed', 0} end
if tonumber(ARGV[5]) >= tonumber(redis.call('HGET', KEYS[1], 'closes_at')) then
  return {'closed', 0}
end
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 0 then return {'not_on_roll', 0} end
local option = tonumber(ARGV[4])
if option < 0 or option >= tonumber(redis.call('HGET', KEYS[1], 'n_options')) then
  return {'bad_option', 0}
end
local prev = redis.call('HGET', KEYS[2], ARGV[2])
local supersedes = 0
if prev then
  if redis.call('HGET', KEYS[1], 'allow_change') ~= '1' then return {'already', 0} end
  supersedes = tonumber(string.match(prev, '"seq":(%d+)'))
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local entry = string.format(
  '{"kind":"ballot","option":%d,"seq":%d,"supersedes":%d,"tag":"%s"}',
  option, seq, supersedes, ARGV[3])
redis.call('RPUSH', KEYS[3], entry)
redis.call('HSET', KEYS[2], ARGV[2], entry)
if prev then return {'changed', seq} end
return {'ok', seq}
"""

_TRANSITION = """
if redis.call('HGET', KEYS[1], 'status') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2])
return 1
"""

_HANDS = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'open' then return {'closed', 0} end
if redis.call('LLEN', KEYS[2]) > 0 then return {'has_ballots', 0} end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local entry = string.format('{"counts":%s,"kind":"hands","present":%d,"seq":%d}',
  ARGV[1], tonumber(ARGV[2]), seq)
redis.call('RPUSH', KEYS[2], entry)
redis.call('HSET', KEYS[1], 'status', 'closed')
return {'ok', seq}
"""


class MatterStore:
    def __init__(self, redis: aioredis.Redis, keys: DelibKeys) -> None:
        self.redis = redis
        self.keys = keys
        self._cast = redis.register_script(_CAST)
        self._transition = redis.register_script(_TRANSITION)
        self._hands = redis.register_script(_HANDS)

    async def next_id(self, kind: str, prefix: str) -> str:
        return f"{prefix}{await self.redis.incr(self.keys.seq(kind))}"

    async def create(self, matter: Matter, roll: Sequence[Voter], who: dict[str, str]) -> None:
        """Matter, roll and the who-map (keyed digest -> vid) in one transaction."""
        k = self.keys
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(k.matter(matter.id), mapping=hmapping(matter.to_redis()))
            pipe.hset(k.matter(matter.id), "seq", "0")
            for start in range(0, len(roll), 500):
                chunk = roll[start:start + 500]
                pipe.hset(k.roll(matter.id), mapping={v.vid: v.to_json() for v in chunk})
            items = list(who.items())
            for start in range(0, len(items), 500):
                pipe.hset(k.who(matter.id), mapping=dict(items[start:start + 500]))
            await pipe.execute()
        await self.redis.zadd(k.village(matter.village), {matter.id: matter.created_at})

    async def get(self, matter_id: str) -> Matter | None:
        raw = smap(await self.redis.hgetall(self.keys.matter(matter_id)))
        return Matter.from_redis(raw) if raw.get("id") else None

    async def save_fields(self, matter: Matter, *names: str) -> None:
        values = matter.to_redis()
        await self.redis.hset(self.keys.matter(matter.id),
                              mapping=hmapping({n: values[n] for n in names}))

    async def transition(self, matter_id: str, old: Status, new: Status) -> bool:
        return bool(await self._transition(keys=[self.keys.matter(matter_id)],
                                           args=[old.value, new.value]))

    async def vid_of(self, matter_id: str, who_digest: str) -> str | None:
        raw = await self.redis.hget(self.keys.who(matter_id), who_digest)
        return text(raw) if raw else None

    async def voter(self, matter_id: str, vid: str) -> Voter | None:
        raw = await self.redis.hget(self.keys.roll(matter_id), vid)
        return Voter.from_json(vid, text(raw)) if raw else None

    async def roll(self, matter_id: str) -> list[Voter]:
        raw = smap(await self.redis.hgetall(self.keys.roll(matter_id)))
        return sorted((Voter.from_json(v, d) for v, d in raw.items()), key=lambda v: v.label)

    async def cast(self, matter_id: str, vid: str, slot: str, tag: str, option: int,
                   now: float) -> tuple[str, int]:
        k = self.keys
        result: Any = await self._cast(
            keys=[k.matter(matter_id), k.ballots(matter_id), k.entries(matter_id),
                  k.roll(matter_id)],
            args=[vid, slot, tag, str(option), repr(now)])
        return text(result[0]), int(result[1])

    async def has_voted(self, matter_id: str, slot: str) -> bool:
        return bool(await self.redis.hexists(self.keys.ballots(matter_id), slot))

    async def turnout(self, matter_id: str) -> int:
        return int(await self.redis.hlen(self.keys.ballots(matter_id)))

    async def record_hands(self, matter_id: str, counts: Sequence[int], present: int
                           ) -> tuple[str, int]:
        k = self.keys
        result: Any = await self._hands(keys=[k.matter(matter_id), k.entries(matter_id)],
                                        args=[json.dumps(list(counts), separators=(",", ":")),
                                              str(present)])
        return text(result[0]), int(result[1])

    async def entries(self, matter_id: str) -> list[str]:
        return slist(await self.redis.lrange(self.keys.entries(matter_id), 0, -1))

    async def stored_hashes(self, matter_id: str) -> list[str]:
        return slist(await self.redis.lrange(self.keys.hashes(matter_id), 0, -1))

    async def write_hashes(self, matter_id: str, chain: Sequence[str]) -> None:
        key = self.keys.hashes(matter_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if chain:
                pipe.rpush(key, *chain)
            await pipe.execute()

    async def in_village(self, village: str, limit: int = 50) -> list[str]:
        return slist(await self.redis.zrevrange(self.keys.village(village), 0, limit - 1))

    # organisers appointed per village
    async def appoint(self, village: str, userid: str) -> None:
        await self.redis.sadd(self.keys.organisers(village), userid)

    async def is_organiser(self, village: str, userid: str) -> bool:
        return bool(await self.redis.sismember(self.keys.organisers(village), userid))

    # due transitions
    async def due_add(self, what: str, matter_id: str, at: float) -> None:
        await self.redis.zadd(self.keys.due(), {f"{what}:{matter_id}": at})

    async def due_now(self, now: float, limit: int = 100) -> list[str]:
        return slist(await self.redis.zrangebyscore(self.keys.due(), "-inf", now, 0, limit))

    async def due_done(self, member: str) -> None:
        await self.redis.zrem(self.keys.due(), member)


class DrawStore:
    def __init__(self, redis: aioredis.Redis, keys: DelibKeys) -> None:
        self.redis = redis
        self.keys = keys

    async def save(self, record: dict[str, Any], secret: str) -> None:
        key = self.keys.draw(str(record["id"]))
        await self.redis.hset(key, mapping={
            "record": json.dumps(record, ensure_ascii=False, sort_keys=True),
            "secret": secret})
        await self.redis.zadd(self.keys.draws(str(record["village"])),
                              {str(record["id"]): float(record.get("created_at", 0))})

    async def update(self, record: dict[str, Any]) -> None:
        await self.redis.hset(self.keys.draw(str(record["id"])), "record",
                              json.dumps(record, ensure_ascii=False, sort_keys=True))

    async def get(self, draw_id: str) -> tuple[dict[str, Any], str] | None:
        raw = smap(await self.redis.hgetall(self.keys.draw(draw_id)))
        if not raw.get("record"):
            return None
        return json.loads(raw["record"]), raw.get("secret", "")
