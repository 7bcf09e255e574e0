"""Where each group lives: the registry's shards, one Redis Cluster slot per 县区 (keys.py).

A group's row, its packs, counts and history sit in the shard of its 县区 (`{reg:<code>}`;
`{reg:-}` on no 县区); the index slot `{reg}` keeps the tree and `gshard`, which names the
shards that may hold each group, the first one holding it (its home). A write asks the index
for the group's route (ROUTE: its ancestors, its shard, the tree version) and runs the write
script in that shard. A node changing parent or level bumps the tree version; a write that
sees the version change under it writes again on the new path.

A group moving to another 县区 (a re-placement, a node moved, the layout migration) is
written in the new shard before the old copy goes, in an order a crash at any step leaves
readable: `gshard` names both shards (home first) and lists the group in `moving`; the new
shard gets the record (with the old shard's history); `gshard` names the new shard first;
the old copy is dropped; `gshard` names only the new shard and `moving` forgets the group.
A reader that meets a group of `moving` keeps only the copy in its home shard, and the next
write of the group finishes an interrupted move.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from registry.codec import group_content, normalise_group
from registry.keys import NO_COUNTY, RegistryKeys
from registry.models import DeliveryKind, Group, Level
from registry.people import PeopleStore
from registry.replies import opt, optionals, text, texts
from registry.tree import RegistryError

GROUP_BATCH = 1000


class ConflictError(RegistryError):
    """The record changed under a read-modify-write too many times in a row."""


class Route(NamedTuple):
    """Where a group write goes, as the index saw it at tree `version` (scripts.ROUTE)."""

    version: str
    held: tuple[str, ...]  # the shards gshard names, its home first
    shard: str  # the shard of the group's node
    pack: int  # index of the pack node in codes (-1: unknown node)
    codes: str  # ancestors, root first, joined by ","

    @property
    def moves(self) -> bool:
        return self.held != (self.shard,)


def parse_route(reply: Sequence[Any]) -> Route:
    version, held, shard, pack, codes = reply
    return Route(text(version), tuple(text(held).split()), text(shard), int(pack), text(codes))


def without(shards: Sequence[str], shard: str) -> list[str]:
    return [s for s in dict.fromkeys(shards) if s != shard]


class ShardStore(PeopleStore):
    """Routing, moving and reading groups across the shards."""

    def shard_keys(self, shard: str) -> RegistryKeys:
        return self.keys.shard(shard)

    async def tree_version(self) -> str:
        return text(await self.redis.get(self.keys.tree_version())) or "0"

    async def _routes(self, groups: Sequence[Group]) -> list[Route]:
        args = [[self.keys.prefix, normalise_group(g).node, g.chat_id] for g in groups]
        replies = await self._pipelined(self._route, self.keys.group_shards(), args, GROUP_BATCH)
        return [parse_route(r) for r in replies]

    def _group_args(
        self, group: Group, actor: str, source: str, mode: str, expected: str, reason: str,
        route: Route, prev: str = "", history: str = "",
    ) -> list[str | int]:
        return [
            self.shard_keys(route.shard).prefix, group.chat_id, group_content(group),
            group.kind.value, group.node, group.state.value, group.name, group.member_count,
            f"{self.clock.now():.3f}", actor, source, reason, mode, expected,
            max(route.pack, 0), route.codes, prev, history,
        ]

    async def _write_in(self, route: Route, args: list[str | int]) -> tuple[int, str]:
        status, what = await self._upsert_group(
            keys=[self.shard_keys(route.shard).groups()], args=args)
        return int(status), text(what)

    async def _move(
        self, group: Group, route: Route, actor: str, source: str, mode: str, expected: str,
        reason: str,
    ) -> tuple[int, str]:
        """Write `group` into route.shard and drop it from the shards gshard named before
        (module docstring). The compare of `mode` "match"/"absent" is made on the home copy."""
        home = self.shard_keys(route.held[0])
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(home.groups(), group.chat_id)
            pipe.lrange(home.history(group.chat_id), 0, -1)
            raw_prev, raw_history = await pipe.execute()
        prev = opt(raw_prev)
        if (mode == "match" and prev != expected) or (mode == "absent" and prev):
            return -2, ""
        await self._set_held(group.chat_id, [*route.held, route.shard], moving=True)
        args = self._group_args(group, actor, source, "move", "", reason, route, prev or "",
                                "\n".join(texts(raw_history)))
        result = await self._write_in(route, args)
        await self.finish_move(group.chat_id, route.shard, route.held)
        return result

    async def finish_move(self, chat_id: str, shard: str, held: Sequence[str]) -> None:
        """`shard` holds the group now: its other copies go, then gshard forgets them."""
        others = without(held, shard)
        await self._set_held(chat_id, [shard, *others], moving=True)
        for other in others:
            await self._drop(other, chat_id)
        await self._set_held(chat_id, [shard], moving=False)

    async def _set_held(self, chat_id: str, held: Sequence[str], *, moving: bool) -> None:
        k = self.keys
        async with self.redis.pipeline(transaction=True) as pipe:  # one slot: the index
            pipe.hset(k.group_shards(), chat_id, " ".join(dict.fromkeys(held)))
            if moving:
                pipe.sadd(k.moving(), chat_id)
            else:
                pipe.srem(k.moving(), chat_id)
            await pipe.execute()

    async def _drop(self, shard: str, chat_id: str) -> None:
        route = Route("", (shard,), shard, 0, "")
        empty = Group(chat_id, "", DeliveryKind.CUSTOMER_GROUP, "", "", 0)
        await self._write_in(route, self._group_args(empty, "", "", "drop", "", "", route))

    async def homes(self, chat_ids: Sequence[str]) -> list[str | None]:
        """Each group's home shard (None: no such group)."""
        if not chat_ids:
            return []
        held = optionals(await self.redis.hmget(self.keys.group_shards(), list(chat_ids)))
        return [h.split()[0] if h else None for h in held]

    async def _rows(self, chat_ids: Sequence[str]) -> list[str | None]:
        """The stored rows of `chat_ids` (None where there is none), each from its home."""
        homes = await self.homes(chat_ids)
        where: dict[str, list[int]] = {}
        for i, home in enumerate(homes):
            if home is not None:
                where.setdefault(home, []).append(i)
        out: list[str | None] = [None] * len(chat_ids)
        if not where:
            return out
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard, at in where.items():
                pipe.hmget(self.shard_keys(shard).groups(), [chat_ids[i] for i in at])
            replies = await pipe.execute()
        for at, reply in zip(where.values(), replies, strict=True):
            for i, row in zip(at, optionals(reply), strict=True):
                out[i] = row
        return out

    async def all_shards(self) -> list[str]:
        return sorted(texts(await self.redis.smembers(self.keys.shards())))

    async def moving_homes(self) -> dict[str, str]:
        """Groups between shards -> their home: a reader keeps only the home copy."""
        moving = sorted(texts(await self.redis.smembers(self.keys.moving())))
        homes = await self.homes(moving)
        return {m: h or "" for m, h in zip(moving, homes, strict=True)}

    async def shards_for(self, codes: Sequence[str]) -> list[str]:
        """The shards that may hold groups at or below any of `codes`: a code at or below
        a 县区 has one; a code above, every shard of a 县区 below it, and the no-县区 one."""
        paths = await self.paths(sorted(set(codes)))
        out: set[str] = set()
        above: set[str] = set()
        for path in paths.values():
            county = next((n.code for n in path if n.level is Level.COUNTY), None)
            if county is not None:
                out.add(county)
            elif path:
                above.add(path[-1].code)
        if above:
            shards = await self.all_shards()
            counties = await self.paths([s for s in shards if s != NO_COUNTY])
            out.update(s for s, path in counties.items()
                       if above & {n.code for n in path})
            out.add(NO_COUNTY)
        return sorted(out)
