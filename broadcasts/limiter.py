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

WeCom counts a call when the request reaches it, which may be long after our grant (a loaded
machine, the pair's claim, a slow network): more than the guard, and the next window's first
grants would reach WeCom while it still counts the slow call (45009 right after a window
reopens). So a call is accounted at the later of its grant and its answer: the caller holds
the `Grant` and `restamped()` moves its entries to the time the answer came back, which is
never before WeCom counted it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.clock import Clock
from broadcasts.keys import BroadcastKeys

log = logging.getLogger(__name__)

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
return {1, seq, used_out}
"""

# Moves a grant's entries to `now` (never earlier); an entry the window already dropped (a
# call slower than the window) is counted again, since WeCom counted it within the call.
_RESTAMP = """
local now, n = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, n do
  local log, sumk = KEYS[2 * i - 1], KEYS[2 * i]
  local base = 2 + 3 * (i - 1)
  local member, cost, ttl = ARGV[base + 1], tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  local score = redis.call('ZSCORE', log, member)
  if not score then redis.call('INCRBY', sumk, cost) end
  if not score or tonumber(score) < now then redis.call('ZADD', log, now, member) end
  redis.call('PEXPIRE', log, ttl)
  redis.call('PEXPIRE', sumk, ttl)
end
return n
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


@dataclass(frozen=True, slots=True)
class Grant:
    """One request's answer. Granted (`seq` names its entries): `wait` is what was waited
    first; refused (`seq` 0): `wait` is the simulated seconds until it could be granted."""

    wait: float
    seq: int = 0
    rates: tuple[Rate, ...] = ()

    @property
    def granted(self) -> bool:
        return self.seq > 0


class RateLimiter:
    """Grants requests against shared ceilings; every process and worker uses the same buckets."""

    def __init__(self, redis: aioredis.Redis, keys: BroadcastKeys, clock: Clock,
                 guard: float = 1.0) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self.guard = guard
        self._script = redis.register_script(_ACQUIRE)
        self._restamp = redis.register_script(_RESTAMP)

    async def take(self, rates: Sequence[Rate], *, now: float | None = None) -> Grant:
        """Take every rate at once, or say how long until it could be (`Grant.wait`)."""
        granted, value, _ = await self._run(rates, commit=True, now=now)
        if not granted:
            return Grant(value)
        return Grant(0.0, int(value), tuple(rates))

    @asynccontextmanager
    async def hold(self, rates: Sequence[Rate]) -> AsyncIterator[Grant]:
        """Wait for the rates, run the call inside, account it when it comes back."""
        grant = await self._wait_for(rates)
        async with self.restamped(grant):
            yield grant

    @asynccontextmanager
    async def restamped(self, grant: Grant) -> AsyncIterator[None]:
        """Run the call granted by `grant`; on the way out (answer, error or timeout) its
        entries count from now, so the window they free cannot open before WeCom's does."""
        try:
            yield
        finally:
            await self._restamp_or_keep(grant)

    async def _restamp_or_keep(self, grant: Grant) -> None:
        """restamp, except that a Redis gone away (a failover) must not hide the call's own
        outcome: a message sent but reported failed would be sent again. The entries then
        count from the grant, as they did before re-stamps."""
        try:
            await self.restamp(grant)
        except (RedisError, OSError) as error:
            log.warning("limiter: a call's answer could not be re-stamped (%s); it counts "
                        "from its grant", type(error).__name__)

    async def restamp(self, grant: Grant, *, now: float | None = None) -> None:
        """Count `grant`'s entries from `now` (the call's answer) if that is later."""
        if not grant.seq:
            return
        keys: list[str] = []
        args: list[str | int] = [self._ms(now), len(grant.rates)]
        for rate in grant.rates:
            keys += [self._keys.bucket_log(rate.bucket), self._keys.bucket_sum(rate.bucket)]
            args += [f"{grant.seq}:{rate.cost}", rate.cost, self._ttl_ms(rate)]
        await self._restamp(keys=keys, args=args)

    async def _wait_for(self, rates: Sequence[Rate]) -> Grant:
        """Take the rates, sleeping out each named wait; Grant.wait is the total waited."""
        waited = 0.0
        while True:
            grant = await self.take(rates)
            if grant.granted:
                return Grant(waited, grant.seq, grant.rates)
            await self._clock.sleep(grant.wait)
            waited += grant.wait

    def _ms(self, now: float | None) -> int:
        return int((self._clock.now() if now is None else now) * 1000)

    def _ttl_ms(self, rate: Rate) -> int:
        return self._clock.real_ms(rate.window * 2) + 1000

    async def usage(self, rates: Sequence[Rate], *, now: float | None = None) -> list[int]:
        """How much of each bucket the current window has used (nothing is taken)."""
        _, _, used = await self._run(rates, commit=False, now=now)
        return used

    async def _run(self, rates: Sequence[Rate], *, commit: bool,
                   now: float | None) -> tuple[bool, float, list[int]]:
        if not rates:
            return True, 0.0, []
        keys: list[str] = []
        args: list[str | int] = [self._ms(now), len(rates), "1" if commit else "0"]
        for rate in rates:
            window_ms = int((rate.window + self.guard) * 1000)
            keys += [self._keys.bucket_log(rate.bucket), self._keys.bucket_sum(rate.bucket)]
            args += [rate.limit, window_ms, rate.cost, self._ttl_ms(rate)]
        keys.append(self._keys.limiter_seq())
        status, value, used = await self._script(keys=keys, args=args)
        if int(status) < 0:
            bad = rates[int(value) - 1]
            raise CeilingTooSmallError(f"{bad.bucket}: 单次消耗 {bad.cost} 超过上限 {bad.limit}")
        granted = int(status) == 1  # value: the grant's seq, else the wait in ms
        return granted, int(value) if granted else int(value) / 1000, [int(u) for u in used]
