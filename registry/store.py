"""The registry in Redis: the administrative tree, the resident groups on it, and the staff.

Subtree queries are index reads, not tree walks: each group's row also sits in the "pack" of
its 网格 (on no grid, as a 村社区's own group: of its 乡镇街道, or of its 县区 or the city
when it hangs that high), every ancestor lists the packs below it with their SHA-1
(`psum:<code>`), and `count:<code>` holds per-kind group and member totals for every node.
All of that sits in the group's shard, the slot of its 乡镇街道 (shards.py); a node above
the 乡镇街道 sums the shards below it, read in one pipelined round trip.
A whole city is ~2,300 small packs read in one round trip, and a breakdown is one HGETALL
per shard; each process keeps the packs it decoded (packcache.py) and re-reads only those
whose SHA-1 changed. One Lua script per write keeps the record, those indexes, the name
index and the group's history consistent, so any number of gridbot processes can write
concurrently. Layout: keys.py; scripts:
scripts.py; the tree: tree.py; people: people.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from tqdm import tqdm

from bot.clock import Clock
from bot.keys import Keys
from bot.redis import scan_pages
from registry.codec import (
    US,
    clean,
    decode_group,
    group_dict,
    normalise_group,
    typed_field,
)
from registry.keys import NO_SHARD, RegistryKeys
from registry.models import (
    DeliveryKind,
    Group,
    GroupChange,
    GroupState,
    Level,
    UnplacedGroup,
)
from registry.packcache import MAX_GROUPS, Pack, PackCache, Selection, held_arg
from registry.replies import mapping, opt, text, texts
from registry.shards import ConflictError, ShardStore, shard_of
from registry.tree import RegistryError, UnknownNodeError

SYSTEM = "system"
# the layout: packs per 网格 or 乡镇街道, with SHA-1 sums, in per-乡镇街道 shards (keys.py)
LAYOUT = "4"
LEGACY_KEYS = ("groups", "gmeta", "gname", "unplaced", "packsum", "gpacksum", "hist:*",
               "pack:*", "gpack:*", "packs:*", "gpacks:*", "psum:*", "gpsum:*", "count:*")
log = logging.getLogger(__name__)
NODE = attrgetter("node")
MAX_TRIES = 20
# A group's pack is its deepest 网格 or, on no grid (a 村's own group), its deepest
# 乡镇街道/县区/市: most villages hold one group, and thousands of one-row packs cost a
# query more than their rows do.
PACK_LEVELS = frozenset({Level.CITY, Level.COUNTY, Level.TOWNSHIP, Level.GRID})
# Levels whose `psum:` lists every pack at or below them. A 村社区 lists its grids' packs;
# its own groups are picked out of its township's pack.
SUM_LEVELS = PACK_LEVELS | {Level.VILLAGE}

__all__ = ["ConflictError", "GroupWrite", "Registry", "RegistryError", "UnknownNodeError"]


@dataclass(frozen=True, slots=True)
class GroupWrite:
    """Outcome of one group write: the group as it now is, and what the history says."""

    group: Group | None
    changed: bool
    what: str = ""


Change = Callable[[Group | None], Group | None]


class Registry(ShardStore):
    """Reads and writes the registry. Besides the connection it holds only a PackCache, which
    Redis validates on every read (see packcache.py)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, clock: Clock,
                 *, max_cached_groups: int = MAX_GROUPS) -> None:
        super().__init__(redis, keys, clock)
        self.pack_cache = PackCache(max_cached_groups)

    @classmethod
    async def open(cls, redis: aioredis.Redis, keys: Keys, clock: Clock,
                   *, max_cached_groups: int = MAX_GROUPS) -> Registry:
        """The registry of a starting process: its indexes in the current layout first."""
        registry = cls(redis, keys, clock, max_cached_groups=max_cached_groups)
        await registry.ensure_layout()
        return registry

    async def upsert_group(
        self, group: Group, *, actor: str = SYSTEM, source: str = "", unplaced_reason: str = "",
        candidates: Sequence[str] = (),
    ) -> bool:
        """Create or replace a group record; True when something changed (updated_at aside).

        A group on an unknown node raises UnknownNodeError. An active group without a node is
        listed as unplaced with `unplaced_reason`.
        """
        reason = _reason_json(unplaced_reason, candidates) if not group.node else ""
        write = await self._write(group, actor, source, mode="any", reason=reason)
        return write.changed

    async def update_group(
        self, chat_id: str, change: Change, *, actor: str = SYSTEM, source: str = "",
        unplaced_reason: str = "", candidates: Sequence[str] = (),
    ) -> GroupWrite:
        """Read-modify-write: `change(current)` returns the new record (None: leave it).

        Retried when another process wrote the group in between, so concurrent partial
        updates (owner from one event, member count from another) never undo each other.
        """
        for _ in range(MAX_TRIES):
            [stored] = await self._rows([chat_id])
            current = decode_group(stored) if stored else None
            new = change(current)
            if new is None:
                return GroupWrite(current, False)
            reason = _reason_json(unplaced_reason, candidates) if not new.node else ""
            mode, expected = ("match", stored) if stored else ("absent", "")
            try:
                return await self._write(new, actor, source, mode=mode, expected=expected,
                                         reason=reason)
            except ConflictError:
                continue
        raise ConflictError(f"群 {chat_id} 正被频繁修改，请稍后重试")

    async def _write(
        self, group: Group, actor: str, source: str, *, mode: str, expected: str = "",
        reason: str = "",
    ) -> GroupWrite:
        """Route the write, run it in its shard (moving the group there if need be); again
        on the new path when the tree changed meanwhile (the content is then stored)."""
        first: GroupWrite | None = None
        for _ in range(MAX_TRIES):
            [route] = await self._routes([group])
            if route.pack < 0:
                self._check(group, -1)
            if route.moves:
                status, what = await self._move(group, route, actor, source, mode, expected,
                                                reason)
            else:
                args = self._group_args(group, actor, source, mode, expected, reason, route)
                written = await self._write_direct(route, group.chat_id, args)
                if written is None:
                    continue  # the group moved away between its route and its write
                status, what = written
            self._check(group, status)
            write = GroupWrite(normalise_group(group), status == 1, what)
            first = write if first is None else first
            if await self.tree_version() == route.version:
                return first
            mode, expected = "any", ""
        raise ConflictError(f"群 {group.chat_id} 所在的网格树正被频繁修改，请稍后重试")

    @staticmethod
    def _check(group: Group, status: int) -> None:
        if status == -1:
            raise UnknownNodeError(f"节点 {group.node} 不存在（群 {group.name or group.chat_id}）")
        if status == -2:
            raise ConflictError(f"群 {group.chat_id} 已被修改")

    async def upsert_groups(
        self, groups: Iterable[Group], *, actor: str = SYSTEM, source: str = "",
        reasons: Mapping[str, tuple[str, Sequence[str]]] | None = None, batch: int = 500,
    ) -> list[bool]:
        """upsert_group for many groups, pipelined; each write is still its own atomic script.

        `reasons` gives unplaced groups their (reason, candidates) by chat id.
        """
        items, why = list(groups), reasons or {}

        def reason(g: Group) -> str:
            return "" if g.node else _reason_json(*why.get(g.chat_id, ("", ())))

        out: list[bool] = []
        for start in range(0, len(items), batch):
            out += await self._upsert_batch(items[start:start + batch], actor, source, reason)
        return out

    async def _upsert_batch(
        self, items: list[Group], actor: str, source: str, reason: Callable[[Group], str]
    ) -> list[bool]:
        """One batch: routed and written in two pipelined round trips; groups that move
        between shards, or whose path changed meanwhile, one by one."""
        routes = await self._routes(items)
        direct = [i for i, r in enumerate(routes) if r.pack >= 0 and not r.moves]
        calls = [([self.shard_keys(routes[i].shard).groups()],
                  self._group_args(items[i], actor, source, "any", "", reason(items[i]),
                                   routes[i])) for i in direct]
        replies = await self._pipelined_calls(self._upsert_group, calls, len(calls) or 1)
        strays = await self._strays([
            (items[i].chat_id, routes[i].shard, args)
            for i, (_, args), (_, what) in zip(direct, calls, replies, strict=True)
            if text(what) == "created"])
        changed: dict[int, bool] = {}
        for i, (status, _what) in zip(direct, replies, strict=True):
            self._check(items[i], int(status))
            if items[i].chat_id not in strays:  # a stray is written again below
                changed[i] = int(status) == 1
        version = await self.tree_version()
        for i, (group, route) in enumerate(zip(items, routes, strict=True)):
            if route.pack < 0:
                self._check(group, -1)
            if i not in changed or route.version != version:
                write = await self._write(group, actor, source, mode="any",
                                          reason=reason(group))
                changed[i] = changed.get(i, False) or write.changed
        return [changed[i] for i in range(len(items))]

    async def _reindex(self, code: str) -> None:
        """A node moved: re-run the group script so the indexes follow the new path (into
        another shard if the node changed 乡镇街道).

        The groups are found by where they were indexed (gmeta), as the packs still hold them
        at the old place. A rare admin operation, so a scan is fine.
        """
        moved: dict[str, None] = {}
        for shard in await self.all_shards():
            gmeta = self.shard_keys(shard).group_meta()
            async for chat_id, meta in self.redis.hscan_iter(gmeta, count=1000):
                if code in text(meta).partition("|")[2].split(","):
                    moved[text(chat_id)] = None
        for group in await self.groups(list(moved)):
            await self._write(group, SYSTEM, "reindex", mode="any")

    async def ensure_layout(self, *, wait_seconds: float = 900.0) -> bool:
        """Rebuild the indexes when they were written by a gridbot with an older layout
        (another choice of pack nodes, no pack sums, or all in one slot); True when this
        process rebuilt them.

        Every process calls this at start; one rebuilds under a lock, the others wait for it,
        so no process reads half-built indexes. The rebuild moves the groups of a one-slot
        registry (layout 3 and before) into their shards, re-runs the write script on every
        other placed group (history and updated_at untouched), and is safe to repeat if cut
        short.
        """
        k = self.keys
        if text(await self.redis.get(k.layout())) == LAYOUT:
            return False
        if not await self.redis.hlen(k.groups()) and not await self.all_shards():
            await self.redis.set(k.layout(), LAYOUT)
            return False
        lock = k.layout() + ":lock"
        if not await self.redis.set(lock, "1", nx=True, ex=int(wait_seconds)):
            for _ in range(int(wait_seconds * 2)):
                await asyncio.sleep(0.5)
                if text(await self.redis.get(k.layout())) == LAYOUT:
                    return False
            raise RegistryError("另一进程重建网格索引超时，请检查后重启")
        try:
            await self._rebuild_indexes()
            await self.redis.set(k.layout(), LAYOUT)
        finally:
            await self.redis.delete(lock)
        return True

    async def _rebuild_indexes(self, batch: int = 500) -> None:
        log.warning("网格索引为旧版格式，正在重建（每个群重写一次索引，记录和历史不变）")
        migrated = await self._migrate_one_slot(batch)
        placed = [g for g in await self.all_groups() if g.node and g.chat_id not in migrated]
        for start in tqdm(range(0, len(placed), batch), desc="重建索引", unit="批",
                          disable=len(placed) < 5000):
            part = placed[start:start + batch]
            routes = await self._routes(part)
            calls = [([self.shard_keys(r.shard).groups()],
                      self._group_args(g, SYSTEM, "layout", "reindex", "", "", r))
                     for g, r in zip(part, routes, strict=True) if not r.moves and r.pack >= 0]
            await self._pipelined_calls(self._upsert_group, calls, batch)
            for group, route in zip(part, routes, strict=True):
                if route.moves or route.pack < 0:
                    await self._write(group, SYSTEM, "layout", mode="any")
        log.warning("网格索引重建完成：%d 个群", len(placed) + len(migrated))

    async def _migrate_one_slot(self, batch: int) -> set[str]:
        """Move the groups a one-slot registry (layout ≤ 3: every key under `{reg}`, which
        the index's key builders still name) holds into their shards, with their history
        and unplaced reasons, then delete the old group keys; the chat ids moved."""
        old = self.keys
        rows = mapping(await self.redis.hgetall(old.groups()))
        reasons = mapping(await self.redis.hgetall(old.unplaced()))
        ids = sorted(rows)
        for start in tqdm(range(0, len(ids), batch), desc="迁移到分片", unit="批",
                          disable=len(ids) < 5000):
            part = ids[start:start + batch]
            async with self.redis.pipeline(transaction=False) as pipe:
                for chat_id in part:
                    pipe.lrange(old.history(chat_id), 0, -1)
                histories = await pipe.execute()
            groups = [decode_group(rows[i]) for i in part]
            routes = [r if r.pack >= 0 else r._replace(shard=NO_SHARD, pack=0, codes="")
                      for r in await self._routes(groups)]
            calls = [([self.shard_keys(r.shard).groups()], self._group_args(
                g, SYSTEM, "layout", "move", "", reasons.get(g.chat_id, ""), r,
                rows[g.chat_id], "\n".join(texts(h))))
                for g, r, h in zip(groups, routes, histories, strict=True)]
            await self._pipelined_calls(self._upsert_group, calls, batch)
            for group, route in zip(groups, routes, strict=True):
                if route.moves:  # an earlier, interrupted migration
                    await self.finish_move(group.chat_id, route.shard, route.held)
        await self._delete_one_slot_keys()
        return set(ids)

    async def _delete_one_slot_keys(self) -> None:
        prefix = self.keys.prefix
        exact = {prefix + name for name in LEGACY_KEYS if not name.endswith("*")}
        starts = tuple(prefix + name[:-1] for name in LEGACY_KEYS if name.endswith("*"))
        async for _, found in scan_pages(self.redis, prefix + "*", 1000):
            old = [key for key in found if key in exact or key.startswith(starts)]
            if old:
                await self.redis.delete(*old)

    async def warm(self) -> int:
        """Decode every active pack into this process's cache; the groups read (logged)."""
        try:
            roots = await self.children("")
            count = sum([len(await self.groups_under(root.code)) for root in roots])
        except (RedisError, RegistryError) as error:  # a cache left cold is only slower
            log.warning("预读网格群失败（查询仍可用，只是首次较慢）：%s", error)
            return 0
        log.info("已预读 %d 个群的记录", count)
        return count

    async def group(self, chat_id: str) -> Group | None:
        found = await self.groups([chat_id])
        return found[0] if found else None

    async def groups(self, chat_ids: Sequence[str]) -> list[Group]:
        """The records of `chat_ids` that exist, in the given order."""
        return [decode_group(row) for row in await self._rows(chat_ids) if row]

    async def all_groups(self) -> list[Group]:
        """Every group record (placed, unplaced, dismissed), by chat id."""
        stored = await self._from_every_shard(lambda k: k.groups())
        return [decode_group(stored[i]) for i in sorted(stored)]

    async def _from_every_shard(
        self, key: Callable[[RegistryKeys], str]
    ) -> dict[str, str]:
        """The hash `key` of every shard merged, by chat id: a group's home copy wins."""
        homes = await self.moving_homes()
        shards = await self.all_shards()
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in shards:
                pipe.hgetall(key(self.shard_keys(shard)))
            replies = await pipe.execute()
        out: dict[str, str] = {}
        for shard, reply in zip(shards, replies, strict=True):
            out.update((c, v) for c, v in mapping(reply).items() if homes.get(c, shard) == shard)
        return out

    async def groups_named(self, name: str) -> list[Group]:
        shards = await self.all_shards()
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in shards:
                pipe.hget(self.shard_keys(shard).group_names(), name)
            replies = await pipe.execute()
        ids = {c for reply in replies for c in text(reply).split()}
        return [g for g in await self.groups(sorted(ids)) if g.name == clean(name)]

    async def groups_under(self, code: str, *, include_dismissed: bool = False) -> list[Group]:
        """Active placed groups at or below `code`, then the dismissed ones if asked.

        Each part comes pack by pack (by the code of the pack's node), by chat id in a pack.
        """
        groups = await self._select([code], [])
        if include_dismissed:
            groups.extend(await self._select([code], [], dismissed=True))
        return groups

    async def target_groups(
        self, codes: Sequence[str], *, tags: Sequence[str] = (), exclude: Sequence[str] = ()
    ) -> list[Group]:
        """Active placed groups under any of `codes`, having any of `tags` (if given).

        In the order of groups_under: pack by pack, by chat id in a pack.

        `exclude` holds node codes (their whole subtree is left out) and/or chat ids.
        """
        groups = await self._select(codes, exclude)
        if tags:
            groups = [g for g in groups if set(g.tags) & set(tags)]
        return groups

    async def _select(
        self, codes: Sequence[str], exclude: Sequence[str], *, dismissed: bool = False
    ) -> list[Group]:
        """Groups under `codes` minus `exclude` (codes or chat ids): pack by pack, by chat id.

        Codes at 网格 level or above select the whole packs at or below them; a code below a
        pack node (a building; a 村社区 for its groups on no grid) selects the pack it sits
        in, filtered to the nodes of its subtree. Packs this process decoded before and that
        have not changed since come from its PackCache.
        """
        nodes = {n.code: n for n in await self.nodes(sorted({*codes, *exclude})) if n}

        def summed(among: Sequence[str]) -> list[str]:  # whole packs at or below them
            return sorted({c for c in among if c in nodes and nodes[c].level in SUM_LEVELS})

        def below(among: Sequence[str]) -> list[str]:  # part of the pack they sit in
            return sorted({c for c in among if c in nodes and nodes[c].level not in PACK_LEVELS})

        whole, (parts, where) = summed(codes), await self._parts(below(codes))
        skip, drop_nodes = summed(exclude), await self._subtrees(below(exclude))
        drop_ids = {c for c in exclude if c not in nodes}
        whole_packs, part_packs = await self._read_packs(dismissed, whole, where, skip)
        if part_packs:  # merged into pack order; only their selected nodes
            allowed = set().union(*parts.values())
            whole_packs = sorted([*whole_packs, *(p.only(allowed) for p in part_packs)],
                                 key=NODE)
        groups = list(chain.from_iterable(p.groups for p in whole_packs))
        if drop_nodes or drop_ids:
            groups = [g for g in groups if g.node not in drop_nodes and g.chat_id not in drop_ids]
        return groups

    async def _read_packs(
        self, dismissed: bool, whole: list[str], where: Mapping[str, str], skip: list[str]
    ) -> tuple[list[Pack], list[Pack]]:
        """The packs under `whole` and the packs `where` names (pack node -> its shard),
        minus those under `skip`: one script call per shard that may hold them, all in one
        round trip; a group between shards only from its home."""
        shards = sorted({*(await self.shards_for(whole) if whole else ()), *where.values()})
        calls, plans = [], []
        for shard in shards:
            space = f"{shard}|{'g' if dismissed else ''}"
            extras = sorted(p for p, s in where.items() if s == shard)
            selection: Selection = (space, tuple(whole), tuple(skip))
            held = self.pack_cache.held(space, selection, extras)
            k = self.shard_keys(shard)
            calls.append(([k.groups()], [
                k.prefix, "1" if dismissed else "0", len(whole), *whole, len(extras), *extras,
                len(skip), *skip, held_arg(held)]))
            plans.append((shard, space, selection, held))
        replies = await self._pipelined_calls(self._packs_under, calls, len(calls) or 1)
        homes = await self.moving_homes()
        whole_packs: list[Pack] = []
        part_packs: list[Pack] = []
        for (shard, space, selection, held), reply in zip(plans, replies, strict=True):
            packs = self.pack_cache.take(space, text(reply[1]), texts(reply[2:]), held)
            n_whole = int(reply[0])
            self.pack_cache.remember(selection, [p.node for p in packs[:n_whole]])
            if homes:
                packs = [p.only_from(shard, homes) for p in packs]
            whole_packs += packs[:n_whole]
            part_packs += packs[n_whole:]
        return sorted(whole_packs, key=NODE), part_packs

    async def _parts(
        self, codes: Sequence[str]
    ) -> tuple[dict[str, set[str]], dict[str, str]]:
        """For codes below 网格 level: pack node -> the nodes selected in it, and pack node
        -> the shard holding the pack."""
        parts: dict[str, set[str]] = {}
        where: dict[str, str] = {}
        for code, path in (await self.paths(codes)).items():
            pack = next((n.code for n in reversed(path) if n.level in PACK_LEVELS), code)
            parts.setdefault(pack, set()).update(await self.subtree_codes(code))
            where[pack] = shard_of(path)
        return parts, where

    async def _subtrees(self, codes: Sequence[str]) -> set[str]:
        return {c for code in codes for c in await self.subtree_codes(code)}

    async def breakdown(self, code: str) -> dict[DeliveryKind, int]:
        """Active placed groups at or below `code`, per delivery kind (every kind present)."""
        return (await self._counts(code))[0]

    async def members_breakdown(self, code: str) -> dict[DeliveryKind, int]:
        """Members of those groups, per delivery kind."""
        return (await self._counts(code))[1]

    async def _counts(self, code: str) -> tuple[dict[DeliveryKind, int], dict[DeliveryKind, int]]:
        """Summed over the shards below `code` (one per 乡镇街道; above it, several)."""
        shards = await self.shards_for([code])
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in shards:
                pipe.hgetall(self.shard_keys(shard).counts(code))
            replies = [mapping(r) for r in await pipe.execute()]

        def total(field: str) -> int:
            return sum(int(raw.get(field, 0)) for raw in replies)

        groups = {kind: total(kind.value) for kind in DeliveryKind}
        members = {kind: total("m:" + kind.value) for kind in DeliveryKind}
        return groups, members

    async def dismiss_group(
        self, chat_id: str, at: float, *, actor: str = SYSTEM, source: str = ""
    ) -> bool:
        """Mark a group dismissed: never a target again, kept with its history."""

        def dismiss(current: Group | None) -> Group | None:
            if current is None or current.state is GroupState.DISMISSED:
                return None
            return current._replace(state=GroupState.DISMISSED, dismissed_at=at)

        return (await self.update_group(chat_id, dismiss, actor=actor, source=source)).changed

    async def bind_group(
        self, chat_id: str, node: str, *, actor: str = SYSTEM, source: str = ""
    ) -> GroupWrite:
        """Place a group explicitly (绑定, import); it stays there until the group is renamed."""

        def place(current: Group | None) -> Group | None:
            return None if current is None else current._replace(node=node)

        write = await self.update_group(chat_id, place, actor=actor, source=source)
        if write.group is not None:
            await self.redis.hset(self.keys.bindings(), chat_id, write.group.name)
        return write

    async def set_bindings(self, names: Mapping[str, str]) -> None:
        """Record explicit placements: chat_id -> the group's name when it was placed."""
        if names:
            await self.redis.hset(self.keys.bindings(), mapping=dict(names))  # type: ignore[arg-type]

    async def binding(self, chat_id: str) -> str | None:
        """The group's name when it was explicitly placed, if it was."""
        return opt(await self.redis.hget(self.keys.bindings(), chat_id))

    async def clear_binding(self, chat_id: str) -> None:
        await self.redis.hdel(self.keys.bindings(), chat_id)

    async def history(self, chat_id: str) -> list[GroupChange]:
        """The group's changes, oldest first (the last 1,000)."""
        [home] = await self.homes([chat_id])
        if home is None:
            return []
        entries = texts(await self.redis.lrange(self.shard_keys(home).history(chat_id), 0, -1))
        out = []
        for index, entry in enumerate(entries, start=1):
            f = json.loads(entry)
            out.append(GroupChange(
                id=str(index), at=float(f.get("at") or 0), actor=f.get("actor", ""),
                source=f.get("source", ""), what=f.get("what", ""),
                changes=_typed_changes(f.get("what", ""), f.get("changes", {}), f.get("at", "0")),
            ))
        return out

    async def unplaced(self) -> list[UnplacedGroup]:
        """Active groups no node could be found for, with the reason; by chat id."""
        reasons = await self._from_every_shard(lambda k: k.unplaced())
        out = []
        for group in await self.groups(sorted(reasons)):
            raw = json.loads(reasons[group.chat_id] or "{}")
            out.append(UnplacedGroup(
                group.chat_id, group.name, raw.get("reason") or "尚未定位到网格节点",
                group.updated_at, tuple(raw.get("candidates", ())),
            ))
        return out

    async def dump(self) -> dict[str, Any]:
        """A canonical, comparable picture of the registry (timestamps and history aside)."""
        out: dict[str, Any] = {}
        for name, key in (("nodes", self.keys.nodes()), ("people", self.keys.people())):
            raw = mapping(await self.redis.hgetall(key))
            out[name] = {k: json.loads(raw[k]) for k in sorted(raw)}
        out["groups"] = {g.chat_id: group_dict(g) for g in await self.all_groups()}
        out["unplaced"] = sorted(await self._from_every_shard(lambda k: k.unplaced()))
        return out


def _typed_changes(what: str, changes: Any, at: str) -> dict[str, Any]:
    if what == "created":  # the whole record, as its row
        return group_dict(decode_group(f"{changes}{US}{at}"))
    return {k: {"from": typed_field(k, v["from"]), "to": typed_field(k, v["to"])}
            for k, v in changes.items()}


def _reason_json(reason: str, candidates: Sequence[str]) -> str:
    return json.dumps({"reason": reason, "candidates": list(candidates)}, ensure_ascii=False)
