"""建群覆盖 (村村建群、栋栋有群、户户进群) for one node the person covers:

* villages (村社区) and buildings (楼栋) below it with no active group;
* groups not placed in the tree whose candidate nodes lie below it;
* households reached (members of its groups: groups follow 一户一人入群) against households
  known to 一标三实 (实有房屋 records under the node).
Shown per child node as a table, and as a tree down to the villages and buildings lacking one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from collect.models import RecordKind
from console.guard import Viewer, signed_in, source_of
from console.html import e, kpis, pct, respond, shell, table
from registry.models import Group, Level, Node

TREE_LIMIT = 80


@dataclass
class Cover:
    node: Node
    villages: list[Node] = field(default_factory=list)
    bare_villages: list[Node] = field(default_factory=list)
    buildings: list[Node] = field(default_factory=list)
    bare_buildings: list[Node] = field(default_factory=list)
    groups: int = 0
    reached: int = 0
    known: int = 0

    @property
    def reach(self) -> float | None:
        return min(1.0, self.reached / self.known) if self.known else None


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/coverage", signed_in(page))


def _village_of(code: str) -> str:
    head = code.split("-", 1)[0]
    return head if len(head) == 12 else ""


async def cover(viewer: Viewer, node: Node, groups: list[Group]) -> Cover:
    registry, store = viewer.deps.registry, viewer.deps.collect.store
    mine = [g for g in groups if g.node == node.code or g.node.startswith(node.code)]
    with_group = {_village_of(g.node) for g in mine} | {g.node for g in mine}
    c = Cover(node, groups=len(mine), reached=sum(g.member_count for g in mine),
              known=await store.count(node.code, RecordKind.HOUSE))
    if node.level is Level.VILLAGE:
        c.villages = [node]
    elif node.level in (Level.CITY, Level.COUNTY, Level.TOWNSHIP):
        c.villages = await registry.descendants(node.code, Level.VILLAGE)
    if node.level is not Level.BUILDING:
        c.buildings = await registry.descendants(node.code, Level.BUILDING)
    c.bare_villages = [v for v in c.villages if v.code not in with_group]
    c.bare_buildings = [b for b in c.buildings if b.code not in with_group]
    return c


async def page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    home = await viewer.home()
    code = request.query.get("node") or (home[0].code if home else "")
    node = await viewer.node(code, source_of(request))
    registry = viewer.deps.registry
    groups = [g for g in await registry.groups_under(node.code) if g.is_target]
    total = await cover(viewer, node, groups)
    rows = []
    for child in (await registry.children(node.code))[:300]:
        c = await cover(viewer, child, groups)
        rows.append((f'<a href="/console/coverage?node={e(child.code)}">{e(child.name)}</a>',
                     f"{len(c.villages) - len(c.bare_villages)}/{len(c.villages)}",
                     f"{len(c.buildings) - len(c.bare_buildings)}/{len(c.buildings)}",
                     str(c.groups), str(c.reached), str(c.known), pct(c.reach)))
    unplaced = [u for u in await registry.unplaced()
                if any(x == node.code or x.startswith(node.code) for x in u.candidates)]
    villages_ok = len(total.villages) - len(total.bare_villages)
    buildings_ok = len(total.buildings) - len(total.bare_buildings)
    main = kpis(("村社区有群", villages_ok, f"/ {len(total.villages)}", "villages-ok"),
                ("楼栋有群", buildings_ok, f"/ {len(total.buildings)}", ""),
                ("居民群", total.groups, "", ""),
                ("入群户数 / 一标三实户数", total.reached, f"/ {total.known}", "reached"),
                ("未定位的群", len(unplaced), "", ""))
    main += '<section class="card"><h2>按下级</h2>' + table(
        ("下级", "村社区有群", "楼栋有群", "群数", "入群户数", "一标三实户数", "户户进群"),
        rows, tid="coverage", raw=True) + "</section>"
    main += '<section class="card"><h2>树状图：无群的村社区和楼栋</h2><div class="tree">'
    main += _tree(total) + "</div></section>"
    main += '<section class="card"><h2>未定位的群</h2>' + table(
        ("群", "原因", "候选节点"),
        [(u.name, u.reason, "、".join(u.candidates[:3])) for u in unplaced[:200]],
        tid="unplaced") + "</section>"
    return respond(shell(f"{node.name} 建群覆盖", main, who=viewer.label, csrf=viewer.csrf,
                         active="coverage", nav=viewer.nav))


def _tree(c: Cover) -> str:
    """Villages without a group, and buildings without one, under their village."""
    bare_b: dict[str, list[Node]] = {}
    for b in c.bare_buildings:
        bare_b.setdefault(_village_of(b.code), []).append(b)
    villages = {v.code: v for v in c.villages}
    codes = sorted({v.code for v in c.bare_villages} | set(bare_b))[:TREE_LIMIT]
    out = []
    for code in codes:
        village = villages.get(code)
        name = village.name if village else code
        mark = "无群" if village in c.bare_villages else f"{len(bare_b.get(code, []))} 栋无群"
        items = "".join(f"<li>{e(b.name)}</li>" for b in bare_b.get(code, [])[:50])
        out.append(f'<details><summary class="late">{e(name)} <b>{e(mark)}</b></summary>'
                   f"<ul>{items}</ul></details>")
    if not out:
        return "<p>全部村社区和楼栋均已建群。</p>"
    return "".join(out)
