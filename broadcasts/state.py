"""Per (notice, group) state and per owner-task state, changed only by one Lua script.

Every change is a compare-and-set: it names the states it may leave and, optionally, the
worker that must hold the record (a fence), and either happens for an item or reports the
record as it is. The `submitted` record written by `claim` BEFORE a send is the idempotency
record: only one worker can move a pair out of `planned`, so a pair is sent at most once
however many workers run or die. A worker that finds a pair still `submitted` by a dead
worker does not know whether WeCom got the request: it reconciles (customer tasks) or marks
the pair `uncertain` (appchat, webhook), never resends.

Counts per state are kept in the same script, so progress never scans all pairs.

A claim (`durable=True`) is not acted on until a replica has it too (bot.replicas: the
script and WAIT over one connection to the key's primary): a primary killed right after the
claim could otherwise be replaced by a replica without it, and the group be sent again.
`Outcome.replicated` False: no replica acknowledged in time; the caller must not send.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from bot.replicas import eval_replicated, replicas_for
from bot.rtypes import olist, opt, smap
from broadcasts.keys import BroadcastKeys
from broadcasts.models import PairRecord, PairState

_TRANSITION = """
local pairs_key, counts, delivered, units = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local spec = cjson.decode(ARGV[1])
local now = spec.now
if spec.unit then
  local raw = redis.call('HGET', units, spec.unit)
  if not raw then return {'nounit'} end
  local u = cjson.decode(raw)
  local allowed = false
  for _, s in ipairs(spec.ufrom) do if u.s == s then allowed = true end end
  if not allowed or (spec.ufence ~= '' and u.w ~= spec.ufence) then return {'unit', raw} end
  u.s = spec.uto
  u.t = now
  for k, v in pairs(spec.uset) do u[k] = v end
  if spec.uattempt then u.a = (u.a or 0) + 1 end
  redis.call('HSET', units, spec.unit, cjson.encode(u))
end
local from = {}
for _, s in ipairs(spec.from) do from[s] = true end
local out = {'ok', 0}
local moved = false
for i, item in ipairs(spec.items) do
  local raw = redis.call('HGET', pairs_key, item.c)
  local done = false
  if raw then
    local rec = cjson.decode(raw)
    if from[rec.s] and (spec.fence == '' or rec.w == spec.fence) then
      local to = item.to or spec.to
      redis.call('HINCRBY', counts, rec.s, -1)
      redis.call('HINCRBY', counts, to, 1)
      rec.s = to
      rec.t = now
      if spec.worker ~= '' then rec.w = spec.worker end
      if spec.attempt then rec.a = (rec.a or 0) + 1 end
      if item.d then rec.d = item.d end
      if item.dt then
        rec.dt = item.dt
        redis.call('ZADD', delivered, item.dt, item.c)
      end
      redis.call('HSET', pairs_key, item.c, cjson.encode(rec))
      done = true
      moved = true
    end
  end
  if done then out[i + 2] = '' else out[i + 2] = raw or '-' end
end
if moved and ARGV[2] then
  -- live views (console/live.py) in any process learn that this notice moved
  redis.call('PUBLISH', ARGV[2], spec.to .. ' ' .. ARGV[3])
end
local pending = 0
local open = redis.call('HMGET', counts, 'planned', 'submitted', 'awaiting_owner', 'late')
for _, n in ipairs(open) do pending = pending + (tonumber(n) or 0) end
out[2] = pending
return out
"""


@dataclass(frozen=True, slots=True)
class Item:
    """One pair to move, with what to record on it."""

    chat: str
    detail: str | None = None
    delivered_at: float | None = None
    to: PairState | None = None  # overrides the transition's target for this item

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"c": self.chat}
        if self.to is not None:
            spec["to"] = self.to.value
        if self.detail is not None:
            spec["d"] = self.detail
        if self.delivered_at is not None:
            spec["dt"] = self.delivered_at
        return spec


@dataclass(frozen=True, slots=True)
class UnitChange:
    """The owner-task part of a transition: it must succeed for any pair to move."""

    unit: str
    from_: Collection[str]
    to: str
    fence: str = ""
    set: dict[str, Any] | None = None
    attempt: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a transition did: pairs moved, and the current record of those that did not."""

    moved: list[str]
    kept: dict[str, PairRecord | None]
    unit_ok: bool = True
    unit_now: dict[str, Any] | None = None
    pending: int = -1  # pairs of the notice still pending afterwards (-1: not known)
    replicated: bool = True  # False: a durable write no replica acknowledged in time

    @property
    def ok(self) -> bool:
        return self.unit_ok and not self.kept


@dataclass(frozen=True, slots=True)
class Unit:
    """A customer-group task for one owner (≤ 2,000 groups)."""

    name: str
    state: str  # planned | submitted | awaiting_owner | done | failed
    owner: str
    chats: tuple[str, ...]
    msgid: str = ""
    created_at: float = 0.0
    worker: str = ""
    attempts: int = 0
    reminded: int = 0
    confirmed_at: float = 0.0
    submitted_at: float = 0.0
    owner_told: bool = False

    @classmethod
    def from_raw(cls, name: str, raw: dict[str, Any]) -> Unit:
        return cls(name, str(raw["s"]), str(raw["o"]), tuple(raw.get("chats") or ()),
                   str(raw.get("msgid", "")), float(raw.get("ct", 0)), str(raw.get("w", "")),
                   int(raw.get("a", 0)), int(raw.get("rem", 0)), float(raw.get("cf", 0)),
                   float(raw.get("st", 0)), bool(raw.get("om", 0)))


def unit_json(owner: str, chats: Sequence[str]) -> str:
    """The initial record of an owner task."""
    return json.dumps({"s": "planned", "o": owner, "chats": list(chats), "msgid": "", "ct": 0,
                       "w": "", "t": 0, "a": 0, "rem": 0, "cf": 0}, ensure_ascii=False)


_STATES = frozenset(s.value for s in PairState)


class NotReplicatedError(Exception):
    """A claim no replica acknowledged in time: it was taken back, nothing may be sent now."""


class StateStore:
    """Reads and changes pair and unit records of notices."""

    def __init__(self, redis: aioredis.Redis, keys: BroadcastKeys, *,
                 wait_replicas: int | None = None, wait_timeout_ms: int = 1000) -> None:
        self._redis = redis
        self._keys = keys
        self._script = redis.register_script(_TRANSITION)
        self._wait_replicas, self._wait_timeout_ms = wait_replicas, wait_timeout_ms

    async def transition(self, notice: int, items: Iterable[Item], from_: Collection[PairState],
                         to: PairState, *, now: float, fence: str = "", worker: str = "",
                         attempt: bool = False, unit: UnitChange | None = None,
                         durable: bool = False) -> Outcome:
        """Move each item whose state is in `from_` (held by `fence`, if given) to `to`.

        `durable`: also wait until a replica has the change (see the module docstring)."""
        items = list(items)
        spec: dict[str, Any] = {
            "now": now, "from": [s.value for s in from_] or ["-"], "to": to.value,
            "fence": fence, "worker": worker, "attempt": attempt,
            "items": [i.to_spec() for i in items],
        }
        if unit is not None:
            spec.update(unit=unit.unit, ufrom=list(unit.from_), uto=unit.to, ufence=unit.fence,
                        uset=unit.set or {}, uattempt=unit.attempt)
        k = self._keys
        keys = [k.pairs(notice), k.counts(notice), k.delivered(notice), k.units(notice)]
        # ARGV 2 and 3: the channel the script publishes on when a pair moved (not a key:
        # PUBLISH touches no slot), and the wall-clock time live views measure delay from
        args = [json.dumps(spec, ensure_ascii=False), self._keys.live(notice),
                f"{time.time():.3f}"]
        need = await replicas_for(self._redis, keys[0], self._wait_replicas) if durable else 0
        acks = 0
        if need:
            raw, acks = await eval_replicated(self._redis, _TRANSITION, self._script.sha, keys,
                                              args, replicas=need,
                                              timeout_ms=self._wait_timeout_ms)
        else:  # no replica to wait for: the one round trip as ever
            raw = await self._script(keys=keys, args=args)
        if raw[0] == "nounit":
            return Outcome([], {}, unit_ok=False)
        if raw[0] == "unit":
            return Outcome([], {}, unit_ok=False, unit_now=json.loads(raw[1]))
        moved: list[str] = []
        kept: dict[str, PairRecord | None] = {}
        for item, result in zip(items, raw[2:], strict=True):
            if result == "":
                moved.append(item.chat)
            else:
                kept[item.chat] = None if result == "-" else PairRecord.from_json(result)
        return Outcome(moved, kept, pending=int(raw[1]), replicated=acks >= need)

    async def pair(self, notice: int, chat: str) -> PairRecord | None:
        raw = opt(await self._redis.hget(self._keys.pairs(notice), chat))
        return PairRecord.from_json(raw) if raw else None

    async def pair_and_group(self, notice: int, chat: str) -> tuple[PairRecord | None, str | None]:
        """The pair's record and its planned group's JSON, in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hget(self._keys.pairs(notice), chat)
        pipe.hget(self._keys.groups(notice), chat)
        record, group = (opt(x) for x in await pipe.execute())
        return (PairRecord.from_json(record) if record else None), group

    async def pairs_of(self, notice: int, chats: Sequence[str]) -> dict[str, PairRecord]:
        """Records of `chats` that exist."""
        if not chats:
            return {}
        raw = olist(await self._redis.hmget(self._keys.pairs(notice), list(chats)))
        return {c: PairRecord.from_json(r) for c, r in zip(chats, raw, strict=True) if r}

    async def pairs(self, notice: int) -> dict[str, PairRecord]:
        raw = smap(await self._redis.hgetall(self._keys.pairs(notice)))
        return {chat: PairRecord.from_json(data) for chat, data in raw.items()}

    async def counts(self, notice: int) -> dict[PairState, int]:
        raw = smap(await self._redis.hgetall(self._keys.counts(notice)))
        return {PairState(k): int(v) for k, v in raw.items() if k in _STATES}

    async def unit(self, notice: int, name: str) -> Unit | None:
        raw = opt(await self._redis.hget(self._keys.units(notice), name))
        return Unit.from_raw(name, json.loads(raw)) if raw else None

    async def units(self, notice: int) -> list[Unit]:
        raw = smap(await self._redis.hgetall(self._keys.units(notice)))
        return [Unit.from_raw(name, json.loads(data)) for name, data in sorted(raw.items())]
