"""The registry in Redis: the administrative tree, the resident groups on it, and the staff.

Subtree queries are index reads, not tree walks: each group's row also sits in the "pack" of
its 网格 (on no grid, as a 村社区's own group: of its 乡镇街道, or of its 县区 or the city
when it hangs that high), every ancestor lists the packs below it with their SHA-1
(`psum:<code>`), and `count:<code>` holds per-kind group and member totals for every node.
A whole city is ~2,300 small packs read in one script call, and a breakdown is one HGETALL;
each process keeps the packs it decoded (packcache.py) and re-reads only those whose SHA-1
changed. One Lua script per
write keeps the record, those indexes, the name index and the group's history consistent,
so any number of gridbot processes can write concurrently. Layout: keys.py; scripts:
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
from registry.codec import (
    US,
    decode_group,
    group_content,
    group_dict,
    normalise_group,
    typed_field,
)
from registry.models import (
    DeliveryKind,
    Group,
    GroupChange,
    GroupState,
    Level,
    UnplacedGroup,
)
from registry.packcache import MAX_GROUPS, Pack, PackCache, Selection, held_arg
from registry.people import PeopleStore
from registry.replies import mapping, opt, optionals, text, texts
from registry.tree import RegistryError, UnknownNodeError

SYSTEM = "system"
LAYOUT = "3"  # the index layout: packs per 网格 or 乡镇街道, with SHA-1 sums (keys.py)
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


class ConflictError(RegistryError):
    """The record changed under a read-modify-write too many times in a row."""


@dataclass(frozen=True, slots=True)
class GroupWrite:
    """Outcome of one group write: the group as it now is, and what the history says."""

    group: Group | None
    changed: bool
    what: str = ""


Change = Callable[[Group | None], Group | None]


class Registry(PeopleStore):
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
            stored = opt(await self.redis.hget(self.keys.groups(), chat_id))
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
        args = self._group_args(group, actor, source, mode, expected, reason)
        status, what = await self._upsert_group(keys=[self.keys.groups()], args=args)
        self._check(group, int(status))
        return GroupWrite(normalise_group(group), int(status) == 1, text(what))

    @staticmethod
    def _check(group: Group, status: int) -> None:
        if status == -1:
            raise UnknownNodeError(f"节点 {group.node} 不存在（群 {group.name or group.chat_id}）")
        if status == -2:
            raise ConflictError(f"群 {group.chat_id} 已被修改")

    def _group_args(
        self, group: Group, actor: str, source: str, mode: str, expected: str, reason: str
    ) -> list[str | int]:
        return [
            self.keys.prefix, group.chat_id, group_content(group), group.kind.value, group.node,
            group.state.value, group.name, group.member_count, f"{self.clock.now():.3f}", actor,
            source, reason, mode, expected,
            json.dumps(group_dict(normalise_group(group)), ensure_ascii=False),
        ]

    async def upsert_groups(
        self, groups: Iterable[Group], *, actor: str = SYSTEM, source: str = "",
        reasons: Mapping[str, tuple[str, Sequence[str]]] | None = None, batch: int = 500,
    ) -> list[bool]:
        """upsert_group for many groups, pipelined; each write is still its own atomic script.

        `reasons` gives unplaced groups their (reason, candidates) by chat id.
        """
        items, why = list(groups), reasons or {}

        def args(g: Group) -> list[str | int]:
            reason = "" if g.node else _reason_json(*why.get(g.chat_id, ("", ())))
            return self._group_args(g, actor, source, "any", "", reason)

        results = await self._pipelined(
            self._upsert_group, self.keys.groups(), [args(g) for g in items], batch
        )
        for group, (status, _what) in zip(items, results, strict=True):
            self._check(group, int(status))
        return [int(status) == 1 for status, _what in results]

    async def _reindex(self, code: str) -> None:
        """A node moved: re-run the group script so the indexes follow the new path.

        The groups are found by where they were indexed (gmeta), as the packs still hold them
        at the old place. A rare admin operation, so a scan is fine.
        """
        moved = []
        async for chat_id, meta in self.redis.hscan_iter(self.keys.group_meta(), count=1000):
            if code in text(meta).partition("|")[2].split(","):
                moved.append(text(chat_id))
        for group in await self.groups(moved):
            await self._write(group, SYSTEM, "reindex", mode="any")

    async def ensure_layout(self, *, wait_seconds: float = 900.0) -> bool:
        """Rebuild the indexes when they were written by a gridbot with an older layout
        (another choice of pack nodes, or no pack sums); True when this process rebuilt them.

        Every process calls this at start; one rebuilds under a lock, the others wait for it,
        so no process reads half-built indexes. The rebuild re-runs the write script on every
        placed group (history and updated_at untouched) and is safe to repeat if cut short.
        """
        k = self.keys
        if text(await self.redis.get(k.layout())) == LAYOUT:
            return False
        if not await self.redis.hlen(k.groups()):
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
        placed = [g for g in await self.all_groups() if g.node]
        arglists = [self._group_args(g, SYSTEM, "layout", "reindex", "", "") for g in placed]
        for start in tqdm(range(0, len(arglists), batch), desc="重建索引", unit="批",
                          disable=len(arglists) < 5000):
            await self._pipelined(self._upsert_group, self.keys.groups(),
                                  arglists[start:start + batch], batch)
        log.warning("网格索引重建完成：%d 个群", len(placed))

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
        stored = opt(await self.redis.hget(self.keys.groups(), chat_id))
        return decode_group(stored) if stored else None

    async def groups(self, chat_ids: Sequence[str]) -> list[Group]:
        """The records of `chat_ids` that exist, in the given order."""
        if not chat_ids:
            return []
        stored = optionals(await self.redis.hmget(self.keys.groups(), list(chat_ids)))
        return [decode_group(record) for record in stored if record]

    async def all_groups(self) -> list[Group]:
        """Every group record (placed, unplaced, dismissed), by chat id."""
        stored = mapping(await self.redis.hgetall(self.keys.groups()))
        return [decode_group(stored[i]) for i in sorted(stored)]

    async def groups_named(self, name: str) -> list[Group]:
        ids = text(await self.redis.hget(self.keys.group_names(), name))
        return await self.groups(sorted(ids.split()))

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

        whole, parts = summed(codes), await self._parts(below(codes))
        skip, drop_nodes = summed(exclude), await self._subtrees(below(exclude))
        drop_ids = {c for c in exclude if c not in nodes}
        whole_packs, part_packs = await self._read_packs(dismissed, whole, parts, skip)
        if part_packs:  # merged into pack order; only their selected nodes
            allowed = set().union(*parts.values())
            whole_packs = sorted([*whole_packs, *(p.only(allowed) for p in part_packs)],
                                 key=NODE)
        groups = list(chain.from_iterable(p.groups for p in whole_packs))
        if drop_nodes or drop_ids:
            groups = [g for g in groups if g.node not in drop_nodes and g.chat_id not in drop_ids]
        return groups

    async def _read_packs(
        self, dismissed: bool, whole: list[str], parts: Mapping[str, object], skip: list[str]
    ) -> tuple[list[Pack], list[Pack]]:
        """The packs under `whole` and the packs named in `parts`, minus those under `skip`."""
        selection: Selection = (dismissed, tuple(whole), tuple(skip))
        held = self.pack_cache.held(dismissed, selection, parts)
        args = [self.keys.prefix, "1" if dismissed else "0", len(whole), *whole,
                len(parts), *sorted(parts), len(skip), *skip, held_arg(held)]
        reply = await self._packs_under(keys=[self.keys.groups()], args=args)
        packs = self.pack_cache.take(dismissed, text(reply[1]), texts(reply[2:]), held)
        n_whole = int(reply[0])
        whole_packs = sorted(packs[:n_whole], key=NODE)
        self.pack_cache.remember(selection, [p.node for p in whole_packs])
        return whole_packs, packs[n_whole:]

    async def _parts(self, codes: Sequence[str]) -> dict[str, set[str]]:
        """Pack node -> the nodes selected in it, for codes below 网格 level."""
        parts: dict[str, set[str]] = {}
        for code, path in (await self.paths(codes)).items():
            pack = next((n.code for n in reversed(path) if n.level in PACK_LEVELS), code)
            parts.setdefault(pack, set()).update(await self.subtree_codes(code))
        return parts

    async def _subtrees(self, codes: Sequence[str]) -> set[str]:
        return {c for code in codes for c in await self.subtree_codes(code)}

    async def breakdown(self, code: str) -> dict[DeliveryKind, int]:
        """Active placed groups at or below `code`, per delivery kind (every kind present)."""
        return (await self._counts(code))[0]

    async def members_breakdown(self, code: str) -> dict[DeliveryKind, int]:
        """Members of those groups, per delivery kind."""
        return (await self._counts(code))[1]

    async def _counts(self, code: str) -> tuple[dict[DeliveryKind, int], dict[DeliveryKind, int]]:
        raw = mapping(await self.redis.hgetall(self.keys.counts(code)))
        groups = {kind: int(raw.get(kind.value, 0)) for kind in DeliveryKind}
        members = {kind: int(raw.get("m:" + kind.value, 0)) for kind in DeliveryKind}
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
        entries = texts(await self.redis.lrange(self.keys.history(chat_id), 0, -1))
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
        reasons = mapping(await self.redis.hgetall(self.keys.unplaced()))
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
        for name, key in (("nodes", self.keys.nodes()), ("groups", self.keys.groups()),
                          ("people", self.keys.people())):
            raw = mapping(await self.redis.hgetall(key))
            decode = (lambda v: group_dict(decode_group(v))) if name == "groups" else json.loads
            out[name] = {k: decode(raw[k]) for k in sorted(raw)}
        out["unplaced"] = sorted(mapping(await self.redis.hgetall(self.keys.unplaced())))
        return out


def _typed_changes(what: str, changes: Any, at: str) -> dict[str, Any]:
    if what == "created":  # the whole record, as its row
        return group_dict(decode_group(f"{changes}{US}{at}"))
    return {k: {"from": typed_field(k, v["from"]), "to": typed_field(k, v["to"])}
            for k, v in changes.items()}


def _reason_json(reason: str, candidates: Sequence[str]) -> str:
    return json.dumps({"reason": reason, "candidates": list(candidates)}, ensure_ascii=False)
