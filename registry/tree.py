"""The administrative tree in Redis: nodes, children, names, levels (base of Registry).

A node is one field of the `nodes` hash; `kids:<code>`, `name:<name>` and `level:<level>`
sets index it. The path of a node is one Lua call that follows parent pointers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from bot.batching import Call, eval_many
from bot.clock import Clock
from bot.keys import Keys
from registry import scripts
from registry.codec import node_json
from registry.keys import RegistryKeys
from registry.models import LEVEL_ORDER, Level, Node
from registry.replies import optionals, texts

NAME_SEPARATORS = ("/", "／", ">")


class RegistryError(Exception):
    """A write the registry refuses; str(error) is Chinese, fit for a user."""


class UnknownNodeError(RegistryError):
    pass


class TreeStore:
    """Nodes of the tree; holds no state of its own besides the connection."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, clock: Clock) -> None:
        self.redis = redis
        self.keys = RegistryKeys(keys)
        self.clock = clock
        self._path = redis.register_script(scripts.PATH)
        self._route = redis.register_script(scripts.ROUTE)
        self._places = redis.register_script(scripts.PLACES)
        self._claim = redis.register_script(scripts.CLAIM)
        self._upsert_node = redis.register_script(scripts.UPSERT_NODE)
        self._upsert_group = redis.register_script(scripts.UPSERT_GROUP)
        self._upsert_person = redis.register_script(scripts.UPSERT_PERSON)
        self._packs_under = redis.register_script(scripts.PACKS_UNDER)

    async def upsert_node(self, node: Node) -> bool:
        """Create or update a node; True when something changed. Its parent must exist."""
        return (await self.upsert_nodes([node]))[0]

    async def upsert_nodes(self, nodes: Sequence[Node], *, batch: int = 500) -> list[bool]:
        """upsert_node for many nodes (parents first), pipelined."""
        k = self.keys
        args: list[list[str | int]] = [
            [k.prefix, n.code, node_json(n), n.parent, n.name, n.level.value] for n in nodes
        ]
        results = await self._pipelined(self._upsert_node, k.nodes(), args, batch)
        for node, status in zip(nodes, map(int, results), strict=True):
            if status == -1:
                raise UnknownNodeError(f"上级节点 {node.parent} 不存在（节点 {node.code}）")
            if status == -2:
                raise RegistryError(f"节点 {node.code} 不能挂在自己的下级 {node.parent} 之下")
            if status == 2:
                await self._reindex(node.code)
        return [int(status) > 0 for status in results]

    async def _reindex(self, code: str) -> None:
        """A node moved under another parent: the groups below it follow (see Registry)."""

    async def _pipelined(
        self, script: AsyncScript, key: str, arglists: Sequence[Sequence[str | int]], batch: int
    ) -> list[Any]:
        """Run `script` once per argument list, `batch` calls per round trip."""
        return await self._pipelined_calls(script, [([key], a) for a in arglists], batch)

    async def _pipelined_calls(
        self, script: AsyncScript, calls: Sequence[Call], batch: int
    ) -> list[Any]:
        """Run `script` once per (keys, args), `batch` calls per round trip (any slots)."""
        out: list[Any] = []
        for start in range(0, len(calls), batch):
            results = await eval_many(self.redis, str(script.script), script.sha,
                                      calls[start:start + batch])
            for result in results:
                if isinstance(result, Exception):
                    raise result
            out.extend(results)
        return out

    async def node(self, code: str) -> Node | None:
        return (await self.nodes([code]))[0]

    async def nodes(self, codes: Sequence[str]) -> list[Node | None]:
        """The nodes of `codes`, None where a code is unknown."""
        if not codes:
            return []
        raws = optionals(await self.redis.hmget(self.keys.nodes(), list(codes)))
        return [Node.from_json(raw) if raw else None for raw in raws]

    async def _existing(self, codes: Sequence[str]) -> list[Node]:
        return [n for n in await self.nodes(codes) if n is not None]

    async def children(self, code: str) -> list[Node]:
        """Direct children, by code; `children("")` lists the roots."""
        return await self._existing(sorted(texts(await self.redis.smembers(self.keys.kids(code)))))

    async def path(self, code: str) -> list[Node]:
        """Root … node; [] for an unknown code."""
        return (await self.paths([code]))[code]

    async def paths(self, codes: Sequence[str]) -> dict[str, list[Node]]:
        """path() of many codes in one round trip."""
        args = [[self.keys.prefix, code] for code in codes]
        results = await self._pipelined(self._path, self.keys.nodes(), args, 1000)
        return {
            code: [Node.from_json(raw) for raw in texts(raws)]
            for code, raws in zip(codes, results, strict=True)
        }

    async def is_within(self, code: str, ancestor: str) -> bool:
        return any(n.code == ancestor for n in await self.path(code))

    async def find_nodes(self, name: str) -> list[Node]:
        """Nodes named `name`; "孝义市/新义街道" narrows by ancestors' names, in order."""
        parts = split_path(name)
        if not parts:
            return []
        codes = await self.codes_named(parts[-1])
        if len(parts) == 1:
            return await self._existing(codes)
        paths = await self.paths(codes)
        return [p[-1] for p in paths.values() if p and _names_in_order(parts[:-1], p[:-1])]

    async def codes_named(self, name: str) -> list[str]:
        """Codes of the nodes named exactly `name`."""
        return sorted(texts(await self.redis.smembers(self.keys.by_name(name))))

    async def nodes_at_level(self, level: Level, under: str = "") -> list[Node]:
        """Every node of `level`, optionally only those within `under`; by code."""
        codes = sorted(texts(await self.redis.smembers(self.keys.level(level.value))))
        if under:
            inside = set(await self.subtree_codes(under))
            codes = [c for c in codes if c in inside]
        return await self._existing(codes)

    async def descendants(self, code: str, level: Level) -> list[Node]:
        """Nodes of `level` below `code`, searching through the levels in between."""
        rank = LEVEL_ORDER.index(level)
        found: list[Node] = []
        frontier = [code]
        while frontier:
            async with self.redis.pipeline(transaction=False) as pipe:
                for c in frontier:
                    pipe.smembers(self.keys.kids(c))
                kids = sorted(c for members in await pipe.execute() for c in texts(members))
            nodes = await self._existing(kids)
            found.extend(n for n in nodes if n.level is level)
            frontier = [n.code for n in nodes if LEVEL_ORDER.index(n.level) < rank]
        return found

    async def subtree_codes(self, code: str) -> list[str]:
        """`code` and all its descendants, breadth first (one round trip per level)."""
        out, frontier = [code], [code]
        while frontier:
            async with self.redis.pipeline(transaction=False) as pipe:
                for c in frontier:
                    pipe.smembers(self.keys.kids(c))
                kids = await pipe.execute()
            frontier = sorted(c for members in kids for c in texts(members))
            out.extend(frontier)
        return out


def split_path(name: str) -> list[str]:
    """"孝义市 / 新义街道" → ["孝义市", "新义街道"]."""
    for sep in NAME_SEPARATORS[1:]:
        name = name.replace(sep, NAME_SEPARATORS[0])
    return [part.strip() for part in name.split(NAME_SEPARATORS[0]) if part.strip()]


def _names_in_order(names: Sequence[str], ancestors: Sequence[Node]) -> bool:
    """True when `names` appear among the ancestors' names in order (gaps allowed)."""
    it = iter(a.name for a in ancestors)
    return all(any(n == a for a in it) for n in names)
