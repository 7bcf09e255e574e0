"""A notice's plan: its target groups frozen with everything the workers need to send.

Built once from the registry (one round trip for the groups' paths, one for the staff on
them) and written to Redis in one script, so workers never consult the registry while
sending, and a group's path, owner and officers are those at the time of the command.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from bot.rtypes import olist, opt, slist, smap
from broadcasts.keys import BroadcastKeys
from broadcasts.models import PairRecord, PairState, PlannedGroup
from broadcasts.quota import QuotaBook
from broadcasts.state import unit_json
from registry.models import DeliveryKind, Group, Level, Node, Person, Role
from registry.store import Registry

QUOTA_SPENT = "本月群发次数已用完，未发送"

_WRITE = """
if ARGV[1] ~= '1' and redis.call('HEXISTS', KEYS[5], 'planned') == 1 then return 0 end
if ARGV[4] ~= '' and redis.call('HEXISTS', KEYS[5], ARGV[4]) == 1 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6])
local spec = cjson.decode(ARGV[2])
for _, chat in ipairs(spec.direct) do redis.call('RPUSH', KEYS[6], chat) end
for chat, g in pairs(spec.groups) do redis.call('HSET', KEYS[1], chat, g) end
for chat, p in pairs(spec.pairs) do redis.call('HSET', KEYS[2], chat, p) end
for state, n in pairs(spec.counts) do redis.call('HSET', KEYS[3], state, n) end
for name, u in pairs(spec.units) do redis.call('HSET', KEYS[4], name, u) end
redis.call('HSET', KEYS[5], 'planned', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[5], ARGV[4], ARGV[3]) end
return 1
"""


@dataclass(frozen=True, slots=True)
class Plan:
    """Groups of a notice, the initial state of each pair, and the owner tasks."""

    groups: list[PlannedGroup]
    initial: dict[str, PairRecord] = field(default_factory=dict)  # chats not starting planned
    units: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)

    def by_chat(self) -> dict[str, PlannedGroup]:
        return {g.chat_id: g for g in self.groups}


async def plan_groups(registry: Registry, groups: Sequence[Group],
                      chat_ids_per_task: int = 2000) -> list[PlannedGroup]:
    """Freeze `groups` with their paths, officers, township supervisors and owner tasks.

    Escalation goes to the grid's police (grid_police), late reports name them too."""
    paths = await registry.paths(sorted({g.node for g in groups}))
    codes = sorted({n.code for path in paths.values() for n in path})
    staff = await registry.staff_at(codes)
    units = assign_units(groups, chat_ids_per_task)
    out = []
    for g in groups:
        path = paths.get(g.node) or []
        out.append(PlannedGroup(
            chat_id=g.chat_id, name=g.name, kind=g.kind.value, node=g.node,
            path=tuple(n.code for n in path), owner=g.owner, members=g.member_count,
            webhook_key=g.webhook_key, unit=units.get(g.chat_id, ""),
            officers=grid_police(path, staff),
            supervisors=_nearest(path, staff, Role.SUPERVISOR),
        ))
    return out


LOCAL_LEVELS = frozenset({Level.VILLAGE, Level.GRID, Level.BUILDING})


def grid_police(path: Sequence[Node], staff: Mapping[str, list[Person]]) -> tuple[str, ...]:
    """Whom a group's owner is escalated to: the police of its grid or village (an officer,
    else the 辅警 who keeps the village), else the 派出所 admin, else the nearest officer
    further up. A county-wide officer is not the one who knows the grid worker."""
    local = [n for n in path if n.level in LOCAL_LEVELS]
    return (_nearest(local, staff, Role.OFFICER) or _nearest(local, staff, Role.AUXILIARY)
            or _nearest(path, staff, Role.STATION_ADMIN) or _nearest(path, staff, Role.OFFICER))


def _nearest(path: Sequence[Node], staff: Mapping[str, list[Person]], role: Role
             ) -> tuple[str, ...]:
    for node in reversed(path):
        found = [p.userid for p in staff.get(node.code, []) if p.role is role]
        if found:
            return tuple(found)
    return ()


def assign_units(groups: Sequence[Group], chat_ids_per_task: int) -> dict[str, str]:
    """chat → owner task name (`owner#0`, `owner#1` … of ≤ chat_ids_per_task groups each)."""
    per_owner: dict[str, list[str]] = defaultdict(list)
    for g in groups:
        if g.kind is DeliveryKind.CUSTOMER_GROUP:
            per_owner[g.owner].append(g.chat_id)
    out: dict[str, str] = {}
    for owner, chats in per_owner.items():
        for i, chat in enumerate(sorted(chats)):
            out[chat] = f"{owner}#{i // chat_ids_per_task}"
    return out


async def make_plan(quota: QuotaBook, planned: list[PlannedGroup], now: float) -> Plan:
    """The plan of `planned`: customer groups whose monthly quota is spent start `failed`."""
    customer = [g.chat_id for g in planned if g.kind == DeliveryKind.CUSTOMER_GROUP]
    spent = set(await quota.exhausted(customer))
    initial = {c: PairRecord(PairState.FAILED, at=now, detail=QUOTA_SPENT) for c in spent}
    return Plan(planned, initial, units_of(planned, spent))


def units_of(groups: Sequence[PlannedGroup], skip: set[str] | None = None
             ) -> dict[str, tuple[str, tuple[str, ...]]]:
    """unit → (owner, chats) for the customer groups not in `skip`."""
    chats: dict[str, list[str]] = defaultdict(list)
    owners: dict[str, str] = {}
    for g in groups:
        if g.unit and g.chat_id not in (skip or set()):
            chats[g.unit].append(g.chat_id)
            owners[g.unit] = g.owner
    return {unit: (owners[unit], tuple(sorted(c))) for unit, c in chats.items()}


class PlanStore:
    """Writes and reads the frozen plan of a notice."""

    def __init__(self, redis: aioredis.Redis, keys: BroadcastKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._write = redis.register_script(_WRITE)

    async def write(self, notice: int, plan: Plan, now: float, *, replace: bool = False,
                    once: str = "") -> bool:
        """Store the plan with every pair `planned` (or its initial state); only once unless
        `replace` (a scheduled notice re-planned when it fires: `once` names the marker that
        lets only the first of several racing re-plans through). True when written."""
        pairs: dict[str, str] = {}
        counts: dict[str, int] = defaultdict(int)
        for g in plan.groups:
            record = plan.initial.get(g.chat_id) or PairRecord(PairState.PLANNED, at=now)
            pairs[g.chat_id] = record.to_json()
            counts[record.state.value] += 1
        direct = sorted((g for g in plan.groups if not g.unit and g.chat_id not in plan.initial),
                        key=lambda g: (g.kind != DeliveryKind.APPCHAT.value, g.chat_id))
        spec = {
            "direct": [g.chat_id for g in direct],
            "groups": {g.chat_id: g.to_json() for g in plan.groups}, "pairs": pairs,
            "counts": dict(counts),
            "units": {name: unit_json(owner, chats)
                      for name, (owner, chats) in plan.units.items()},
        }
        k = self._keys
        written = await self._write(
            keys=[k.groups(notice), k.pairs(notice), k.counts(notice), k.units(notice),
                  k.marks(notice), k.direct(notice)],
            args=["1" if replace else "0", json.dumps(spec, ensure_ascii=False), repr(now), once])
        return bool(int(written))

    async def work(self, notice: int) -> tuple[list[str], list[str]]:
        """(appchat/webhook chats, owner task names) of the plan, in sending order."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.lrange(self._keys.direct(notice), 0, -1)
        pipe.hkeys(self._keys.units(notice))
        direct, units = await pipe.execute()
        return slist(direct), sorted(slist(units))

    async def group(self, notice: int, chat: str) -> PlannedGroup | None:
        raw = opt(await self._redis.hget(self._keys.groups(notice), chat))
        return PlannedGroup.from_json(raw) if raw else None

    async def groups_named(self, notice: int, chats: Sequence[str]) -> list[str]:
        """Names of `chats` in the plan, in order."""
        if not chats:
            return []
        raw = olist(await self._redis.hmget(self._keys.groups(notice), list(chats)))
        return [PlannedGroup.from_json(r).name if r else c
                for c, r in zip(chats, raw, strict=True)]

    async def groups(self, notice: int) -> dict[str, PlannedGroup]:
        raw = smap(await self._redis.hgetall(self._keys.groups(notice)))
        return {chat: PlannedGroup.from_json(data) for chat, data in raw.items()}
