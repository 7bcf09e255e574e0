"""Case clocks: due times in sharded Redis sorted sets, fired once by any of many processes.

A clock is the member `<case number>|<kind>|<due>` in `{casedue:<shard>}:due` scored by its
due time (simulated epoch). A runner claims due members with one script that moves them to the
shard's in-flight set with a lease; after the action it removes them. A runner that dies
mid-action leaves its members in flight; when their lease passes, any runner claims them again.
The actions themselves are compare-and-set on the case (escalate only from the level below), so
a re-run after such a crash changes nothing twice: each clock takes effect exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.health import LoopHealth
from bot.rtypes import slist
from cases.deps import CasesDeps

log = logging.getLogger(__name__)
CONCURRENCY = 32  # clock actions run at once by one runner (each a few round trips + a send)

_CLAIM = """
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('ZADD', KEYS[2], ARGV[2], m)
  table.insert(out, m)
end
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, m in ipairs(stale) do
  redis.call('ZADD', KEYS[2], ARGV[2], m)
  table.insert(out, m)
end
return out
"""


@dataclass(frozen=True, slots=True)
class Clock:
    number: int
    kind: str  # respond | respond2
    due: float

    @property
    def member(self) -> str:
        return f"{self.number}|{self.kind}|{self.due:.3f}"

    @classmethod
    def parse(cls, member: str) -> Clock:
        number, kind, due = member.split("|")
        return cls(int(number), kind, float(due))


Action = Callable[[CasesDeps, Clock], Awaitable[None]]


def shard_of(deps: CasesDeps, number: int) -> int:
    return number % deps.config.clock_shards


async def schedule(deps: CasesDeps, clock: Clock) -> None:
    shard = shard_of(deps, clock.number)
    await deps.redis.zadd(deps.keys.due(shard), {clock.member: clock.due})


async def claim(deps: CasesDeps, shard: int, *, limit: int = 200) -> list[Clock]:
    now = deps.now()
    lease = now + deps.config.clock_lease_seconds
    script = deps.redis.register_script(_CLAIM)
    raws = await script(keys=[deps.keys.due(shard), deps.keys.inflight(shard)],
                        args=[repr(now), repr(lease), limit])
    return [Clock.parse(m) for m in slist(raws)]


async def done(deps: CasesDeps, clock: Clock) -> None:
    await deps.redis.zrem(deps.keys.inflight(shard_of(deps, clock.number)), clock.member)


@dataclass
class ClockRunner:
    """Polls every shard, runs each due clock's action once, survives Redis going away."""

    deps: CasesDeps
    action: Action
    lateness: list[float] = field(default_factory=list)  # simulated s after due (benchmarks)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    health: LoopHealth | None = None  # part of /healthz inside gridbot serve

    def stop(self) -> None:
        self._stop.set()

    async def run_once(self) -> int:
        claimed = [c for shard in range(self.deps.config.clock_shards)
                   for c in await claim(self.deps, shard)]
        for i in range(0, len(claimed), CONCURRENCY):
            await asyncio.gather(*(self._fire(c) for c in claimed[i:i + CONCURRENCY]))
        return len(claimed)

    async def _fire(self, clock: Clock) -> None:
        self.lateness.append(self.deps.now() - clock.due)
        try:
            await self.action(self.deps, clock)
        except (RedisConnectionError, RedisTimeoutError):
            return  # left in flight: retried when the lease passes
        except Exception:
            log.exception("! cases clock %s failed", clock.member)
        await done(self.deps, clock)

    async def run(self) -> None:
        health = self.health or LoopHealth("case-clocks", float("inf"))
        health.started()
        try:
            await self._loop(health)
        finally:
            health.stopped()

    async def _loop(self, health: LoopHealth) -> None:
        while not self._stop.is_set():
            try:
                await self.run_once()
                health.ok()
                delay = self.deps.config.clock_poll_seconds
            except RedisError as error:
                delay = health.failing(error)  # raises LoopGaveUpError past give_up_seconds
                log.warning("! cases clocks: Redis unavailable (%s); retrying in %.1f s",
                            type(error).__name__, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
