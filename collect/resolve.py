"""Resolve an address to the registry: the node it hangs on and its elements below that node.

The node comes from an explicit 网格 value, a "县/街道/社区/网格/" prefix in the address, or the
sender's single covered node (the form's campaign node). A 村/社区 with only one grid stands
for that grid, so its addresses need not name it. A grid's 楼栋 child is used when the
address names that building, so records sit as deep in the tree as the registry goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from collect.address import AddressParts, parse
from collect.validate import Issue, Severity
from registry.models import Level, Node
from registry.store import Registry


@dataclass(frozen=True, slots=True)
class Resolved:
    node: Node
    path: tuple[Node, ...]  # root … node
    parts: AddressParts

    @property
    def ancestors(self) -> tuple[str, ...]:
        return tuple(n.code for n in self.path)

    @property
    def full_text(self) -> str:
        names = "".join(n.name for n in self.path if n.level is not Level.BUILDING)
        return names + self.parts.display()

    def grid(self) -> str:
        """Code of the grid (or deepest non-building node) this address belongs to."""
        above = [n for n in self.path if n.level is not Level.BUILDING]
        grids = [n for n in above if n.level is Level.GRID]
        return (grids or above)[-1].code


def _issue(name: str, message: str) -> Issue:
    return Issue(name, Severity.ERROR, message)


async def _node_named(registry: Registry, text: str) -> Node | Issue:
    node = await registry.node(text)
    if node is not None:
        return node
    found = await registry.find_nodes(text)
    if len(found) == 1:
        return found[0]
    if not found:
        return _issue("node", f"网格：找不到“{text[:30]}”，请填写网格名称或编码"
                      "（可发送 帮助 查看格式）")
    names = "、".join(n.name for n in found[:5])
    return _issue("node", f"网格：“{text[:30]}”对应多个节点（{names}），"
                  "请写出上级名称，如 社区/网格")


async def _base(registry: Registry, text: str, hint: str,
                scope: Sequence[str]) -> tuple[Node, str] | Issue:
    """The node named by `hint`, by a path prefix in `text`, or the single node in `scope`."""
    if hint:
        node = await _node_named(registry, hint)
        return node if isinstance(node, Issue) else (node, text)
    if "/" in text:
        head, _, tail = text.rpartition("/")
        node = await _node_named(registry, head.strip("/ "))
        return node if isinstance(node, Issue) else (node, tail)
    if len(scope) == 1:
        node_or_none = await registry.node(scope[0])
        if node_or_none is not None:
            return node_or_none, text
    if not scope:
        return _issue("address", "地址：无法确定所属网格，请加上 网格：网格名称")
    return _issue("address", "地址：您负责多个网格，请在地址前写明网格，如 网格：XX网格，"
                  "或 社区名/网格名/振兴路18号")


async def resolve_address(registry: Registry, text: str, *, hint: str = "",
                          scope: Sequence[str] = ()) -> Resolved | Issue:
    """Find the node and the elements of `text`; an Issue names the field and the fix."""
    base = await _base(registry, text, hint, scope)
    if isinstance(base, Issue):
        return base
    node, rest = base
    node = await _only_grid(registry, node)
    path = tuple(await registry.path(node.code))
    parts = parse(rest, strip=tuple(n.name for n in path))
    if parts.is_empty:
        return _issue("address", "地址：缺少街路巷/小区和门牌号，请填写如 振兴路18号3栋2单元501室")
    if node.level is Level.GRID and parts.building:
        building = await _building(registry, node, parts.building)
        if building is not None:
            return Resolved(building, (*path, building), parts)
    return Resolved(node, path, parts)


async def _only_grid(registry: Registry, node: Node) -> Node:
    """The single grid of a 村/社区 that has exactly one, else `node` itself."""
    if node.level is not Level.VILLAGE:
        return node
    grids = [c for c in await registry.children(node.code) if c.level is Level.GRID]
    return grids[0] if len(grids) == 1 else node


async def _building(registry: Registry, grid: Node, number: str) -> Node | None:
    for child in await registry.children(grid.code):
        if child.level is Level.BUILDING and parse(child.name).building == number:
            return child
    return None
