"""Where each group lives: the registry's shards, one Redis Cluster slot per 乡镇街道 (keys.py).

A group's row, its packs, counts and history sit in the shard of its 乡镇街道
(`{reg:<code>}`; a group hung on a 县区 itself: the 县区's; on neither: `{reg:-}`); the
index slot `{reg}` keeps the tree and `gshard`, which names the shards that may hold each
group, the first one holding it (its home). A write asks the index for the group's route
(ROUTE: its ancestors, its shard, the tree version) and runs the write script in that
shard. A node changing parent or level bumps the tree version; a write that sees the
version change under it writes again on the new path.

A group moving to another 乡镇街道 (a re-placement, a node moved, the layout migration) is
written in the new shard before the old copy goes, in an order a crash at any step leaves
readable: `gshard` names both shards (home first) and lists the group in `moving`; the new
shard gets the record (with the old shard's history); `gshard` names the new shard first;
the old copy is dropped if it is still the row the move read; `gshard` names only the new
shard and `moving` forgets the group. A reader that meets a group of `moving` keeps only
the copy in its home shard, and the next write of the group finishes an interrupted move.

Two moves of one group take turns (a lease in the index, `move_lease`). A write that routed
before a move began still lands in the old home; the old copy then differs from the row the
move read, so the move is undone (the old copy home again, the new one dropped) and an
update reads again: neither change is lost. One that lands after the move finished finds no
row there and creates one; a write that created a row checks that `gshard` names its shard,
and if not, drops that stray row and routes again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import redis.asyncio as aioredis

from bot.clock import Clock
from bot.keys import Keys
from bot.lease import LeaseBusyError, lease
from registry.codec import group_content, normalise_group
from registry.keys import NO_SHARD, RegistryKeys
from registry.models import DeliveryKind, Group, Level, Node
from registry.people import PeopleStore
from registry.replies import opt, optionals, text, texts
from registry.tree import RegistryError

GROUP_BATCH = 1000
MOVE_LEASE_MS = 5000  # a move takes milliseconds; a crashed mover's lease lapses after this
MOVE_TRIES = 5  # an unconditional move whose old home changed under it writes again


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

    def __init__(self, redis: aioredis.Redis, keys: Keys, clock: Clock) -> None:
        super().__init__(redis, keys, clock)
        self._paths_version = ""
        self._paths: dict[str, frozenset[str]] = {}  # shard -> codes on its path

    def shard_keys(self, shard: str) -> RegistryKeys:
        return self.keys.shard(shard)

    async def tree_version(self) -> str:
        return text(await self.redis.get(self.keys.tree_version())) or "0"

    async def _routes(self, groups: Sequence[Group]) -> list[Route]:
        """Where each write goes: one script for one group; for a batch, the places of its
        distinct nodes, then the claims of its groups, a script call per GROUP_BATCH each
        (the index does a few commands per node and per batch, not per group)."""
        k = self.keys
        if len(groups) == 1:
            group = groups[0]
            reply = await self._route(keys=[k.group_shards()],
                                      args=[k.prefix, normalise_group(group).node, group.chat_id])
            return [parse_route(reply)]
        places = await self._places_of(sorted({normalise_group(g).node for g in groups}))
        known = [g for g in groups if places[normalise_group(g).node][2] >= 0]
        held: dict[str, str] = {}
        for start in range(0, len(known), GROUP_BATCH):
            part = known[start:start + GROUP_BATCH]
            pairs = [x for g in part for x in (g.chat_id, places[normalise_group(g).node][1])]
            reply = await self._claim(keys=[k.group_shards()], args=[k.prefix, *pairs])
            held.update(zip((g.chat_id for g in part), texts(reply), strict=True))
        out = []
        for group in groups:
            version, shard, pack, codes = places[normalise_group(group).node]
            out.append(Route(version, tuple(held.get(group.chat_id, "").split()), shard, pack,
                             codes))
        return out

    async def _places_of(self, nodes: Sequence[str]) -> dict[str, tuple[str, str, int, str]]:
        """node -> (tree version, shard, pack index (-1: unknown node), ancestor codes)."""
        out: dict[str, tuple[str, str, int, str]] = {}
        for start in range(0, len(nodes), GROUP_BATCH):
            part = nodes[start:start + GROUP_BATCH]
            reply = await self._places(keys=[self.keys.nodes()], args=[self.keys.prefix, *part])
            version, rest = text(reply[0]), reply[1:]
            for i, node in enumerate(part):
                shard, pack, codes = rest[3 * i:3 * i + 3]
                out[node] = (version, text(shard), int(pack), text(codes))
        return out

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

    async def _write_direct(self, route: Route, chat_id: str,
                            args: list[str | int]) -> tuple[int, str] | None:
        """Write where `route` says; None when the route was stale (module docstring)."""
        status, what = await self._write_in(route, args)
        if what == "created" and await self._strays([(chat_id, route.shard, args)]):
            return None
        return status, what

    async def _strays(self, created: Sequence[tuple[str, str, list[str | int]]]) -> set[str]:
        """Of rows just created (chat id, shard, write args), those in a shard `gshard` does
        not name: the group moved away between its route and its write. Each is dropped
        (unless written again since); the caller routes it again. One HMGET for them all."""
        if not created:
            return set()
        held = await self.redis.hmget(self.keys.group_shards(), [c for c, _, _ in created])
        strays = set()
        for (chat_id, shard, args), names in zip(created, held, strict=True):
            if shard not in (opt(names) or "").split():
                await self._drop_if_still(shard, chat_id, f"{args[2]}\x1f{args[8]}")
                strays.add(chat_id)
        return strays

    async def _move(
        self, group: Group, route: Route, actor: str, source: str, mode: str, expected: str,
        reason: str,
    ) -> tuple[int, str]:
        """Write `group` into route.shard and drop it from the shards gshard named before
        (module docstring). The compare of `mode` "match"/"absent" is made on the home copy.

        Moves of one group take turns (a lease in the index). A write that routed before the
        move and lands in the old home while the group moves is caught by the old copy's
        compare-drop: the move is undone and reported as a conflict (-2), so an update reads
        again and keeps both changes, and an unconditional write simply writes again."""
        result = (-2, "")
        try:
            async with lease(self.redis, self.keys.move_lease(group.chat_id),
                             ms=MOVE_LEASE_MS, wait_s=MOVE_LEASE_MS / 1000 + 1):
                for _ in range(MOVE_TRIES):
                    result = await self._move_held(group, route, actor, source, mode,
                                                   expected, reason)
                    if result[0] != -2 or mode in ("match", "absent"):
                        break
        except LeaseBusyError:
            pass
        return result

    async def _move_held(
        self, group: Group, route: Route, actor: str, source: str, mode: str, expected: str,
        reason: str,
    ) -> tuple[int, str]:
        home = self.shard_keys(route.held[0])
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(home.groups(), group.chat_id)
            pipe.lrange(home.history(group.chat_id), 0, -1)
            raw_prev, raw_history = await pipe.execute()
        prev = opt(raw_prev)
        if (mode == "match" and prev != expected) or (mode == "absent" and prev):
            return -2, ""
        if route.held[0] == route.shard:  # an interrupted move's new home: write it there
            result = await self._write_in(route, self._group_args(
                group, actor, source, mode, expected, reason, route))
        else:
            await self._set_held(group.chat_id, [*route.held, route.shard], moving=True)
            args = self._group_args(group, actor, source, "move", "", reason, route,
                                    prev or "", "\n".join(texts(raw_history)))
            result = await self._write_in(route, args)
            await self._set_held(group.chat_id, [route.shard, *route.held], moving=True)
            if not await self._drop_if_still(route.held[0], group.chat_id, prev or ""):
                await self._undo_move(group.chat_id, route)
                return -2, ""
        if result[0] >= 0:
            await self.finish_move(group.chat_id, route.shard, route.held)
        return result

    async def _undo_move(self, chat_id: str, route: Route) -> None:
        """The old home's copy changed while the group moved (a write that routed before
        the move landed there): it is home again and the new copy goes, in an order that a
        crash at any step leaves readable."""
        await self._set_held(chat_id, [*route.held, route.shard], moving=True)
        await self._drop(route.shard, chat_id)
        await self._set_held(chat_id, route.held, moving=len(route.held) > 1)

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
        await self._drop_if_still(shard, chat_id, None)

    async def _drop_if_still(self, shard: str, chat_id: str, row: str | None) -> bool:
        """Drop `shard`'s copy of the group, if it is still `row` ('': none; None: any)."""
        route = Route("", (shard,), shard, 0, "")
        empty = Group(chat_id, "", DeliveryKind.CUSTOMER_GROUP, "", "", 0)
        mode, expected = ("drop", "") if row is None else ("dropmatch", row)
        status, _ = await self._write_in(
            route, self._group_args(empty, "", "", mode, expected, "", route))
        return status != -2

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
        a 乡镇街道 has one; a code above, every shard below it, the shard of a 县区 it is
        in (groups hung on the 县区 itself), and "-" when it is above every 县区."""
        paths = await self.paths(sorted(set(codes)))
        out: set[str] = set()
        above = [path for path in paths.values()
                 if path and not any(n.level is Level.TOWNSHIP for n in path)]
        out.update(shard_of(path) for path in paths.values() if path and path not in above)
        if above:
            where = await self._shard_paths()
            for path in above:
                on_path = {n.code for n in path}
                out.update(s for s, at in where.items() if s in on_path or path[-1].code in at)
                if not any(n.level is Level.COUNTY for n in path):
                    out.add(NO_SHARD)
        return sorted(out)

    async def _shard_paths(self) -> dict[str, frozenset[str]]:
        """Every shard in use -> the codes on its node's path. Kept per tree version: a
        query above a 乡镇街道 would otherwise walk the paths of every shard in the index."""
        k = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:  # one slot: the index
            pipe.get(k.tree_version())
            pipe.smembers(k.shards())
            version, members = await pipe.execute()
        if text(version) != self._paths_version:
            self._paths_version, self._paths = text(version), {}
        missing = [s for s in texts(members) if s != NO_SHARD and s not in self._paths]
        self._paths.update(await self._ancestors(missing))
        return {s: self._paths.get(s, frozenset()) for s in texts(members)}

    async def _ancestors(self, codes: Sequence[str]) -> dict[str, frozenset[str]]:
        """code -> the codes on its path, read a level at a time (one HMGET per level for
        all of them, where a path script per shard would walk the shared upper levels over
        and over)."""
        parent: dict[str, str] = {}
        frontier = sorted(set(codes))
        while frontier:
            nodes = await self.nodes(frontier)
            parent.update((c, n.parent if n else "") for c, n in zip(frontier, nodes, strict=True))
            frontier = sorted({n.parent for n in nodes if n and n.parent} - parent.keys())
        out = {}
        for code in codes:
            path, at = set(), code
            while at and at not in path:
                path.add(at)
                at = parent.get(at, "")
            out[code] = frozenset(path)
        return out


def shard_of(path: Sequence[Node]) -> str:
    """The shard of the groups on the node that ends `path` (scripts.ROUTE does the same):
    its 乡镇街道, else its 县区, else "-"."""
    for level in (Level.TOWNSHIP, Level.COUNTY):
        found = next((n.code for n in path if n.level is level), None)
        if found is not None:
            return found
    return NO_SHARD
