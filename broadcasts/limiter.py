"""A fleet-wide sliding-window rate limiter in Redis (one Lua script, several ceilings at once).

Each bucket is an exact sliding-window log: a sorted set of "<seq>:<cost>" members scored by
the time they were granted, plus a running sum, so a grant costs O(1) amortised however many
entries the hour window holds. A request names every bucket it spends from (API calls per
minute and per hour, appchat person-times, one robot …); the script grants all or none, so
the fleet of workers together never exceeds any ceiling, and a refusal says exactly how long
until enough of the oldest entries leave the window.

Times are simulated milliseconds from the callers' shared Clock (not Redis TIME): under a
sped-up clock WeCom's "per minute" is a simulated minute. Windows are widened by a small
guard so that network jitter between our grant and WeCom's count cannot push two bursts into
one of WeCom's windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from bot.clock import Clock
from broadcasts.keys import BroadcastKeys

_ACQUIRE = """
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local commit = ARGV[3] == '1'
local wait = 0
local used_out = {}
local function cost_of(member) return tonumber(string.match(member, ':(%d+)$')) end
for i = 1, n do
  local log, sumk = KEYS[2 * i - 1], KEYS[2 * i]
  local base = 3 + 4 * (i - 1)
  local limit, window = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  local cost = tonumber(ARGV[base + 3])
  local expired = redis.call('ZRANGEBYSCORE', log, '-inf', now - window)
  if #expired > 0 then
    local freed = 0
    for _, m in ipairs(expired) do freed = freed + cost_of(m) end
    redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
    redis.call('DECRBY', sumk, freed)
  end
  local used = tonumber(redis.call('GET', sumk) or '0')
  used_out[i] = used
  if cost > limit then return {-1, i, used_out} end
  if used + cost > limit then
    local need, freed, offset, w = used + cost - limit, 0, 0, 0
    while freed < need do
      local batch = redis.call('ZRANGE', log, offset, offset + 199, 'WITHSCORES')
      if #batch == 0 then w = window break end
      for j = 1, #batch, 2 do
        freed = freed + cost_of(batch[j])
        if freed >= need then w = tonumber(batch[j + 1]) + window - now break end
      end
      offset = offset + 200
    end
    if w > wait then wait = w end
  end
end
if wait > 0 or not commit then return {0, wait, used_out} end
local seq = redis.call('INCR', KEYS[2 * n + 1])
for i = 1, n do
  local log, sumk = KEYS[2 * i - 1], KEYS[2 * i]
  local base = 3 + 4 * (i - 1)
  local cost, ttl = tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4])
  redis.call('ZADD', log, now, seq .. ':' .. cost)
  redis.call('INCRBY', sumk, cost)
  redis.call('PEXPIRE', log, ttl)
  redis.call('PEXPIRE', sumk, ttl)
end
return {1, 0, used_out}
"""


class CeilingTooSmallError(ValueError):
    """One request costs more than a whole window allows (e.g. a group above the ceiling)."""


@dataclass(frozen=True, slots=True)
class Rate:
    """Spend `cost` from `bucket`, which allows `limit` per `window` simulated seconds."""

    bucket: str
    limit: int
    window: float
    cost: int = 1


class RateLimiter:
    """Grants requests against shared ceilings; every process and worker uses the same buckets."""

    def __init__(self, redis: aioredis.Redis, keys: BroadcastKeys, clock: Clock,
                 guard: float = 1.0) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self.guard = guard
        self._script = redis.register_script(_ACQUIRE)

    async def try_acquire(self, rates: Sequence[Rate], *, now: float | None = None) -> float:
        """Take every rate at once; 0.0 when granted, else simulated seconds until it could be."""
        granted, value, _ = await self._run(rates, commit=True, now=now)
        return 0.0 if granted else value

    async def acquire(self, rates: Sequence[Rate]) -> float:
        """Wait (simulated time) until every rate can be taken, take them; returns the wait."""
        waited = 0.0
        while True:
            wait = await self.try_acquire(rates)
            if wait <= 0:
                return waited
            await self._clock.sleep(wait)
            waited += wait

    async def usage(self, rates: Sequence[Rate], *, now: float | None = None) -> list[int]:
        """How much of each bucket the current window has used (nothing is taken)."""
        _, _, used = await self._run(rates, commit=False, now=now)
        return used

    async def _run(self, rates: Sequence[Rate], *, commit: bool,
                   now: float | None) -> tuple[bool, float, list[int]]:
        if not rates:
            return True, 0.0, []
        keys: list[str] = []
        args: list[str | int] = [int((self._clock.now() if now is None else now) * 1000),
                                 len(rates), "1" if commit else "0"]
        for rate in rates:
            window_ms = int((rate.window + self.guard) * 1000)
            keys += [self._keys.bucket_log(rate.bucket), self._keys.bucket_sum(rate.bucket)]
            args += [rate.limit, window_ms, rate.cost, self._clock.real_ms(rate.window * 2) + 1000]
        keys.append(self._keys.limiter_seq())
        status, value, used = await self._script(keys=keys, args=args)
        if int(status) < 0:
            bad = rates[int(value) - 1]
            raise CeilingTooSmallError(f"{bad.bucket}: 单次消耗 {bad.cost} 超过上限 {bad.limit}")
        return int(status) == 1, int(value) / 1000, [int(u) for u in used]
