"""The registry in Redis: the administrative tree, the resident groups on it, and the staff.

Subtree queries are index reads, not tree walks: each group's row also sits in the "pack" of
its 村社区 (or of the node itself when it hangs higher), every ancestor refcounts the packs
below it, and `count:<code>` holds per-kind group and member totals for every node. A whole
city is ~3,000 pack strings read in one script call, and a breakdown is one HGETALL. One Lua
script per write keeps the record, those indexes, the name index and the group's history
consistent, so any number of gridbot processes can write concurrently. Layout: keys.py;
scripts: scripts.py; the tree: tree.py; people: people.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from bot.registry.codec import (
    ROW,
    US,
    decode_group,
    decode_rows,
    group_content,
    group_dict,
    normalise_group,
    typed_field,
)
from bot.registry.models import (
    DeliveryKind,
    Group,
    GroupChange,
    GroupState,
    Level,
    UnplacedGroup,
)
from bot.registry.people import PeopleStore
from bot.registry.replies import mapping, opt, optionals, text, texts
from bot.registry.tree import RegistryError, UnknownNodeError

SYSTEM = "system"
MAX_TRIES = 20
CHAT_ID = itemgetter(0)  # Group is a NamedTuple: a C-level sort key
PACK_LEVELS = frozenset({Level.CITY, Level.COUNTY, Level.TOWNSHIP, Level.VILLAGE})

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
    """Reads and writes the registry; holds no state of its own besides the connection."""

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
        """Active placed groups at or below `code` (and dismissed ones, if asked), by chat id."""
        groups = await self._select([code], [])
        if include_dismissed:
            groups = sorted([*groups, *await self._select([code], [], dismissed=True)],
                            key=CHAT_ID)
        return groups

    async def target_groups(
        self, codes: Sequence[str], *, tags: Sequence[str] = (), exclude: Sequence[str] = ()
    ) -> list[Group]:
        """Active placed groups under any of `codes`, having any of `tags` (if given); by chat id.

        `exclude` holds node codes (their whole subtree is left out) and/or chat ids.
        """
        groups = await self._select(codes, exclude)
        if tags:
            groups = [g for g in groups if set(g.tags) & set(tags)]
        return groups

    async def _select(
        self, codes: Sequence[str], exclude: Sequence[str], *, dismissed: bool = False
    ) -> list[Group]:
        """Groups under `codes` minus `exclude` (codes or chat ids), by chat id.

        Codes at 村社区 level or above select whole packs; a lower code (grid, building)
        selects its 村社区's pack, filtered to the nodes of its subtree.
        """
        nodes = {n.code: n for n in await self.nodes(sorted({*codes, *exclude})) if n}
        whole = [c for c in codes if c in nodes and nodes[c].level in PACK_LEVELS]
        parts = await self._parts([c for c in codes if c in nodes and c not in whole])
        skip = [c for c in exclude if c in nodes and nodes[c].level in PACK_LEVELS]
        drop_nodes = await self._subtrees([c for c in exclude if c in nodes and c not in skip])
        drop_ids = {c for c in exclude if c not in nodes}
        args = [self.keys.prefix, "1" if dismissed else "0", len(whole), *whole,
                len(parts), *parts, *skip]
        reply = await self._packs_under(keys=[self.keys.groups()], args=args)
        whole_packs = int(reply[0]) + 1
        groups = _decode_packs(reply[1:whole_packs])
        if len(reply) > whole_packs:
            allowed = set().union(*parts.values())
            groups.extend(g for g in _decode_packs(reply[whole_packs:]) if g.node in allowed)
        if drop_nodes or drop_ids:
            groups = [g for g in groups if g.node not in drop_nodes and g.chat_id not in drop_ids]
        groups.sort(key=CHAT_ID)
        return groups

    async def _parts(self, codes: Sequence[str]) -> dict[str, set[str]]:
        """Pack node -> the nodes selected in it, for codes below 村社区 level."""
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


def _decode_packs(packs: Sequence[Any]) -> list[Group]:
    return decode_rows(ROW.join(texts(packs)))


def _reason_json(reason: str, candidates: Sequence[str]) -> str:
    return json.dumps({"reason": reason, "candidates": list(candidates)}, ensure_ascii=False)
