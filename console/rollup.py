"""A notice's delivery rolled up the whole tree (市 → 县 → 乡镇 → 村社区 → 网格 → 群) from one
broadcasts.progress snapshot, and the late groups with their owner and officer."""

from __future__ import annotations

from dataclasses import dataclass, field

from broadcasts.models import PairState
from broadcasts.progress import Snapshot
from console.html import e, table
from registry.models import Person
from registry.store import Registry

MAX_CHILDREN = 60  # per node on the page; the rest are summed in one line
DELIVERED_LABEL = PairState.DELIVERED.label


@dataclass
class Branch:
    code: str
    name: str = ""
    total: int = 0
    delivered: int = 0
    late: int = 0
    children: dict[str, Branch] = field(default_factory=dict)
    groups: list[tuple[str, str, str]] = field(default_factory=list)  # chat, name, state label


@dataclass(frozen=True, slots=True)
class LateGroup:
    chat_id: str
    name: str
    state: str
    owner: str
    officers: str
    node: str


def build(snap: Snapshot) -> Branch:
    root = Branch("")
    late = set(snap.late())
    for chat, g in snap.groups.items():
        rec = snap.pairs.get(chat)
        if rec is None or rec.state is PairState.SKIPPED:
            continue
        done = rec.state is PairState.DELIVERED
        branch = root
        for code in ("", *g.path):
            if code:
                child = branch.children.get(code)
                if child is None:
                    child = branch.children[code] = Branch(code)
                branch = child
            branch.total += 1
            branch.delivered += done
            branch.late += chat in late
        branch.groups.append((chat, g.name, rec.state.label))
    return root


async def node_names(registry: Registry, codes: set[str]) -> dict[str, str]:
    nodes = await registry.nodes(sorted(codes))
    return {n.code: n.name for n in nodes if n is not None}


def name_nodes(root: Branch, names: dict[str, str]) -> None:
    stack = [root]
    while stack:
        branch = stack.pop()
        for code, child in branch.children.items():
            child.name = names.get(code, code)
        stack += branch.children.values()


def minutes(snap: Snapshot) -> float:
    n = snap.notice
    if not n.started_at:
        return 0.0
    return max(0.0, ((n.settled_at or snap.now) - n.started_at) / 60)


def summary(snap: Snapshot) -> str:
    counts = snap.counts()
    delivered = counts.get(PairState.DELIVERED, 0)
    share = f"{delivered / snap.total:.1%}" if snap.total else "—"
    parts = "".join(f"<li>{e(s.label)} <b>{counts[s]}</b></li>" for s in PairState
                    if counts.get(s) and s is not PairState.DELIVERED)
    return (f'<div class="kpis"><div><span>已送达</span><b id="delivered">{delivered}</b>'
            f"<small>/ {snap.total}（{share}）</small></div>"
            f'<div><span>时限内</span><b id="in-time">{snap.in_time()}</b></div>'
            f'<div><span>已用时</span><b id="elapsed">{minutes(snap):.1f}</b>'
            f"<small>分钟</small></div>"
            f'<div><span>迟到</span><b id="late-count">{len(snap.late()) if _past(snap) else 0}'
            f'</b></div><div><span>已转达</span><b>{snap.acks}</b></div></div>'
            f'<ul class="states">{parts}</ul>')


def _past(snap: Snapshot) -> bool:
    return snap.deadline_at > 0 and snap.now >= snap.deadline_at


def _cls(b: Branch) -> str:
    return "ok" if b.delivered == b.total else ("late" if b.late else "wait")


def tree_html(branch: Branch, depth: int = 0) -> str:
    """Nested <details>: a node per line with delivered/total, the least delivered first;
    under each node the groups still waiting (or failed): what an officer has to chase."""
    kids = sorted(branch.children.values(),
                  key=lambda b: (b.delivered / b.total if b.total else 1.0, b.code))
    out = []
    for child in kids[:MAX_CHILDREN]:
        inner = tree_html(child, depth + 1)
        waiting = [(chat, name, state) for chat, name, state in sorted(child.groups)
                   if state != DELIVERED_LABEL]
        groups = "".join(f'<li class="g" data-chat="{e(chat)}">{e(name)} '
                         f"<small>{e(state)}</small></li>"
                         for chat, name, state in waiting[:MAX_CHILDREN])
        opened = " open" if depth < 2 else ""
        out.append(f'<details{opened} data-code="{e(child.code)}"><summary class="{_cls(child)}">'
                   f'{e(child.name)} <b>{child.delivered}/{child.total}</b></summary>'
                   f'{inner}{"<ul>" + groups + "</ul>" if groups else ""}</details>')
    if len(kids) > MAX_CHILDREN:
        rest = kids[MAX_CHILDREN:]
        out.append(f"<p class=more>另有 {len(rest)} 个下级，已送达 "
                   f"{sum(b.delivered for b in rest)}/{sum(b.total for b in rest)}</p>")
    return "".join(out)


def changes(root: Branch) -> tuple[dict[str, list[object]], dict[str, str]]:
    """What a live update carries: per node [delivered, total, class], and the state of
    every group still waiting (a group absent from it has been delivered)."""
    nodes: dict[str, list[object]] = {}
    waiting: dict[str, str] = {}
    stack = [root]
    while stack:
        branch = stack.pop()
        for code, child in branch.children.items():
            nodes[code] = [child.delivered, child.total, _cls(child)]
            stack.append(child)
        waiting.update({chat: state for chat, _, state in branch.groups
                        if state != DELIVERED_LABEL})
    return nodes, waiting


async def late_groups(registry: Registry, snap: Snapshot) -> list[LateGroup]:
    """Groups past the deadline without delivery (or delivered late), with who answers."""
    chats = snap.late() if _past(snap) else []
    wanted = {p for c in chats for p in (snap.groups[c].owner, *snap.groups[c].officers) if p}
    people = {p.userid: p for p in await registry.people(sorted(wanted))}
    nodes = await registry.nodes(sorted({snap.groups[c].node for c in chats}))
    names = {n.code: n.name for n in nodes if n is not None}
    return [LateGroup(c, g.name, snap.pairs[c].state.label, _who(people, g.owner),
                      "、".join(_who(people, o) for o in g.officers) or "—",
                      names.get(g.node, g.node))
            for c in chats for g in (snap.groups[c],)]


def _who(people: dict[str, Person], userid: str) -> str:
    person = people.get(userid)
    return f"{person.name}（{person.role.label}）" if person else (userid or "—")


def late_table(rows: list[LateGroup]) -> str:
    return table(("群", "所在", "状态", "群主", "网格民警"),
                 [(r.name, r.node, r.state, r.owner, r.officers) for r in rows], tid="late")
