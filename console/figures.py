"""考核 figures the console adds to those of cases/assess.py, for a period and a node:

* notices on time — of the (notice, group) pairs of notices created in the period whose
  group lies under the node (follow-ups' skipped pairs aside), the share delivered within the
  notice's deadline (latency counted from the releasing command, as broadcasts.progress does);
* 已转达 rate — of the (notice, grid worker) pairs where the notice was delivered to a group
  the grid worker owns, the share the grid worker acknowledged (已转达);
* collection completeness — for active 一标三实 campaigns, households covered over households
  expected, summed over the grids under the node (collect.campaign's metric).
Per child node of the chosen node, and per grid worker (group owner).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from broadcasts.deps import Runtime
from broadcasts.models import PairState
from collect.campaign import Campaigns
from collect.deps import CollectDeps
from registry.models import Node

MAX_NOTICES = 300


@dataclass
class Tally:
    key: str
    name: str
    pairs: int = 0
    on_time: int = 0
    ack_due: int = 0
    acked: int = 0
    expected: int = 0
    covered: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.pairs if self.pairs else None

    @property
    def ack_rate(self) -> float | None:
        return self.acked / self.ack_due if self.ack_due else None

    @property
    def completeness(self) -> float | None:
        return min(1.0, self.covered / self.expected) if self.expected else None


@dataclass
class Figures:
    node: Node
    start: float
    end: float
    notices: int
    by_node: list[Tally]
    by_person: list[Tally]


async def notice_figures(rt: Runtime, node: Node, children: list[Node], start: float,
                         end: float) -> Figures:
    kids = {c.code: Tally(c.code, c.name) for c in children}
    people: dict[str, Tally] = {}
    ids = await rt.redis.zrangebyscore(rt.keys.index(), start, end)
    counted = 0
    for raw in list(ids)[-MAX_NOTICES:]:
        notice = await rt.notices.get(int(str(raw)))
        if notice is None or not notice.started_at:
            continue
        groups = await rt.plans.groups(notice.id)
        mine = {c: g for c, g in groups.items() if node.code in g.path}
        if not mine:
            continue
        counted += 1
        pairs = await rt.state.pairs_of(notice.id, list(mine))
        acks = set(await rt.redis.hkeys(rt.keys.acks(notice.id)))
        limit = notice.deadline_at - notice.started_at
        owners_due: dict[str, set[str]] = defaultdict(set)  # owner -> child codes
        for chat, g in mine.items():
            rec = pairs.get(chat)
            if rec is None or rec.state is PairState.SKIPPED:
                continue
            delivered = rec.state is PairState.DELIVERED
            on_time = delivered and rec.delivered_at - notice.started_at <= limit
            child = next((kids[c] for c in g.path if c in kids), None)
            person = people.setdefault(g.owner, Tally(g.owner, g.owner)) if g.owner else None
            for t in (child, person):
                if t is not None:
                    t.pairs += 1
                    t.on_time += on_time
            if delivered and g.owner:
                owners_due[g.owner].add(child.key if child else "")
        for owner, codes in owners_due.items():
            done = owner in acks
            people[owner].ack_due += 1
            people[owner].acked += done
            for code in codes:
                if code in kids:
                    kids[code].ack_due += 1
                    kids[code].acked += done
    return Figures(node, start, end, counted, list(kids.values()), list(people.values()))


async def collection_figures(deps: CollectDeps, figures: Figures) -> None:
    kids = {t.key: t for t in figures.by_node}
    campaigns = Campaigns(deps)
    for campaign in await campaigns.active():
        for grid in await campaigns.progress(campaign):
            path = [n.code for n in await deps.registry.path(grid.grid.code)]
            if figures.node.code not in path:
                continue
            for code in path:
                if code in kids:
                    kids[code].expected += grid.expected
                    kids[code].covered += grid.covered
