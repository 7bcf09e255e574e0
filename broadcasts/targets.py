"""Turning the names an officer typed into tree codes (and excluded groups) via the registry."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from broadcasts.grammar import GrammarError
from registry.models import Node
from registry.store import Registry

_CODE = re.compile(r"^\d{6}(\d{3}(\d{3})?)?(-G\d+(-B\d+)?)?$")


@dataclass(frozen=True, slots=True)
class Resolved:
    """Codes of the target nodes, excluded node codes and chat ids, and a readable label."""

    codes: tuple[str, ...]
    exclude: tuple[str, ...]
    label: str


async def resolve(registry: Registry, targets: Sequence[str], exclude: Sequence[str],
                  default_codes: Sequence[str]) -> Resolved:
    """Resolve names/paths/codes; with no target the officer's own nodes (for tags)."""
    nodes = [await _node(registry, t) for t in targets]
    if not nodes:
        nodes = [n for n in await registry.nodes(list(default_codes)) if n is not None]
        if not nodes:
            raise GrammarError("请写明范围，例如：范围：孝义市")
    excluded: list[str] = []
    excluded_names: list[str] = []
    for name in exclude:
        codes = await _exclusion(registry, name)
        excluded += codes
        excluded_names.append(name)
    label = "、".join(n.name for n in nodes)
    if excluded_names:
        label += "（除" + "、".join(excluded_names) + "）"
    return Resolved(tuple(dict.fromkeys(n.code for n in nodes)), tuple(dict.fromkeys(excluded)),
                    label)


async def _node(registry: Registry, name: str) -> Node:
    if _CODE.match(name):
        node = await registry.node(name)
        if node is not None:
            return node
    found = await registry.find_nodes(name)
    if not found:
        raise GrammarError(f"找不到「{name}」，请检查名称，或写完整路径如 孝义市/新义街道")
    if len(found) > 1:
        raise GrammarError(f"「{name}」有 {len(found)} 处：{await _paths(registry, found)}；"
                           "请写完整路径或编码")
    return found[0]


async def _exclusion(registry: Registry, name: str) -> list[str]:
    """A node (its subtree) or a group by exact name or chat id."""
    if _CODE.match(name) and await registry.node(name) is not None:
        return [name]
    found = await registry.find_nodes(name)
    if len(found) == 1:
        return [found[0].code]
    if len(found) > 1:
        raise GrammarError(f"排除的「{name}」有 {len(found)} 处：{await _paths(registry, found)}；"
                           "请写完整路径或编码")
    groups = await registry.groups_named(name) or [
        g for g in [await registry.group(name)] if g is not None]
    if not groups:
        raise GrammarError(f"排除项「{name}」既不是地名也不是群名")
    return [g.chat_id for g in groups]


async def _paths(registry: Registry, nodes: Sequence[Node]) -> str:
    paths = await registry.paths([n.code for n in nodes[:5]])
    return "、".join("/".join(p.name for p in path[1:]) or n.name
                     for n, path in zip(nodes, paths.values(), strict=False))
