"""Live progress of a notice: per-state counts, per-group latency, and a roll-up per level of
the tree (`孝义市 412/415，6 分钟`). Latency is counted from the officer's command that released
the notice; a customer group's delivery time is WeCom's own send_time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from broadcasts.deps import Runtime
from broadcasts.models import Notice, PairRecord, PairState, PlannedGroup
from broadcasts.planner import fmt_duration

MAX_CHILD_ROWS = 30


@dataclass(frozen=True, slots=True)
class NodeRow:
    depth: int  # 0: the top row
    code: str
    name: str
    delivered: int
    total: int
    slowest: float  # latency of the last delivery, seconds


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything 进度 and the reports show about a notice at one moment."""

    notice: Notice
    now: float
    groups: dict[str, PlannedGroup]
    pairs: dict[str, PairRecord]
    acks: int = 0
    rows: list[NodeRow] = field(default_factory=list)

    @property
    def deadline_at(self) -> float:
        return self.notice.deadline_at

    def latency(self, chat: str) -> float | None:
        rec = self.pairs.get(chat)
        if rec is None or rec.state is not PairState.DELIVERED:
            return None
        return max(0.0, rec.delivered_at - self.notice.started_at)

    def counts(self) -> dict[PairState, int]:
        out: dict[PairState, int] = defaultdict(int)
        for rec in self.pairs.values():
            out[rec.state] += 1
        return out

    @property
    def total(self) -> int:
        return len(self.pairs) - self.counts().get(PairState.SKIPPED, 0)

    def latencies(self) -> list[float]:
        return sorted(x for x in (self.latency(c) for c in self.pairs) if x is not None)

    def in_time(self) -> int:
        limit = self.deadline_at - self.notice.started_at
        return sum(1 for x in self.latencies() if x <= limit)

    def late(self) -> list[str]:
        """Chats not delivered by the deadline (skipped follow-up groups aside)."""
        limit = self.deadline_at - self.notice.started_at
        return sorted(c for c, rec in self.pairs.items() if rec.state is not PairState.SKIPPED
                      and ((lat := self.latency(c)) is None or lat > limit))

    def text(self) -> str:
        """The 进度 reply."""
        n, counts = self.notice, self.counts()
        delivered = counts.get(PairState.DELIVERED, 0)
        share = f"（{delivered / self.total:.1%}）" if self.total else ""
        elapsed = (n.settled_at or self.now) - n.started_at if n.started_at else 0.0
        took = "用时" if n.settled_at else "已"
        lines = [f"通知 #{n.id}【{n.level.label}】{n.status.label}"
                 + (f" · {took} {fmt_duration(elapsed)}" if n.started_at else ""),
                 f"已送达 {delivered}/{self.total}{share}，时限内 {self.in_time()}；" + "，".join(
                     f"{s.label} {counts[s]}" for s in (PairState.AWAITING_OWNER, PairState.LATE,
                                                        PairState.PLANNED, PairState.SUBMITTED,
                                                        PairState.FAILED, PairState.UNCERTAIN)
                     if counts.get(s))]
        for row in self.rows:
            done = row.delivered == row.total
            when = f"，{fmt_duration(row.slowest)}" if done and row.total else ""
            lines.append("  " * row.depth + f"{row.name} {row.delivered}/{row.total}{when}")
        if self.acks:
            lines.append(f"网格员已转达 {self.acks} 人")
        return "\n".join(line.rstrip("；") for line in lines)


async def snapshot(rt: Runtime, notice_id: int) -> Snapshot | None:
    """Read the notice, its plan and every pair, and roll delivery up the tree."""
    notice = await rt.notices.get(notice_id)
    if notice is None:
        return None
    groups = await rt.plans.groups(notice_id)
    pairs = await rt.state.pairs(notice_id)
    acks = int(await rt.redis.hlen(rt.keys.acks(notice_id)))
    snap = Snapshot(notice, rt.clock.now(), groups, pairs, acks)
    return Snapshot(notice, snap.now, groups, pairs, acks, await _rows(rt, snap))


async def _rows(rt: Runtime, snap: Snapshot) -> list[NodeRow]:
    paths = [g.path for c, g in snap.groups.items()
             if g.path and c in snap.pairs and snap.pairs[c].state is not PairState.SKIPPED]
    if not paths:
        return []
    top = _common_depth(paths)
    tally: dict[tuple[int, str], list[float | None]] = defaultdict(list)
    for chat, g in snap.groups.items():
        if not g.path or chat not in snap.pairs or snap.pairs[chat].state is PairState.SKIPPED:
            continue
        for depth in (top, top + 1):
            if depth < len(g.path):
                tally[(depth - top, g.path[depth])].append(snap.latency(chat))
    nodes = await rt.registry.nodes([code for _, code in tally])
    names = {n.code: n.name for n in nodes if n is not None}
    rows = [NodeRow(d, code, names.get(code, code), sum(x is not None for x in lats), len(lats),
                    max((x for x in lats if x is not None), default=0.0))
            for (d, code), lats in tally.items()]
    head = [r for r in rows if r.depth == 0]
    kids = sorted((r for r in rows if r.depth == 1),
                  key=lambda r: (r.delivered / r.total if r.total else 1.0, r.code))
    return head + kids[:MAX_CHILD_ROWS]


def _common_depth(paths: list[tuple[str, ...]]) -> int:
    """Depth of the deepest node every path passes through."""
    depth = 0
    shortest = min(len(p) for p in paths)
    while depth + 1 < shortest and len({p[depth + 1] for p in paths}) == 1:
        depth += 1
    return depth


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) of sorted `values` (nearest rank)."""
    if not values:
        return None
    rank = max(0, min(len(values) - 1, round(q * len(values) + 0.5) - 1))
    return values[rank]
