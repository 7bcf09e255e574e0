"""考核: response, on-time closing, resolution and satisfaction per node and per officer.

The formulas are in the package docstring (cases/__init__.py); the limits come from
settings.cases. The console reads `assess()`'s figures as they are; `write_csv`/`write_xlsx`
give the same table to the station. Only counts and times are exported: no reporter, no text.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.settings import CasesSettings
from cases.deps import CasesDeps
from cases.models import Case, CaseKind, Status, Urgency
from registry.models import Level

BATCH = 1000
HEADERS = ("编码", "名称", "事件数", "响应率", "及时办结率", "解决率", "满意率",
           "首次响应中位数(秒)", "首次响应P90(秒)", "矛盾纠纷数", "网格化解率")


@dataclass(frozen=True, slots=True)
class AssessmentRow:
    key: str
    name: str
    cases: int
    response_rate: float | None
    on_time_close_rate: float | None
    resolution_rate: float | None
    satisfaction_rate: float | None
    median_first_response_s: float | None
    p90_first_response_s: float | None
    disputes: int
    disputes_settled_in_grid_share: float | None

    def cells(self) -> list[str | int | float]:
        def rate(v: float | None) -> str:
            return "—" if v is None else f"{v * 100:.1f}%"

        def secs(v: float | None) -> str | float:
            return "—" if v is None else round(v)

        return [self.key, self.name, self.cases, rate(self.response_rate),
                rate(self.on_time_close_rate), rate(self.resolution_rate),
                rate(self.satisfaction_rate), secs(self.median_first_response_s),
                secs(self.p90_first_response_s), self.disputes,
                rate(self.disputes_settled_in_grid_share)]


@dataclass(frozen=True, slots=True)
class Assessment:
    start: float
    end: float
    level: Level
    by_node: list[AssessmentRow]
    by_officer: list[AssessmentRow]
    settings: dict[str, float] = field(default_factory=dict)


def _ratio(num: float, den: int) -> float | None:
    return num / den if den else None


def _p90(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]  # nearest-rank


def respond_limit(cfg: CasesSettings, case: Case) -> float:
    urgent = case.urgency is Urgency.URGENT
    return float(cfg.respond_urgent_seconds if urgent else cfg.respond_normal_seconds)


def row(key: str, name: str, cases: Iterable[Case], cfg: CasesSettings) -> AssessmentRow:
    cases = list(cases)
    responded = [c.first_response_at - c.created_at for c in cases if c.first_response_at]
    on_time = sum(1 for c in cases if c.first_response_at
                  and c.first_response_at - c.created_at <= respond_limit(cfg, c))
    closed = [c for c in cases if c.status is Status.CLOSED]
    close_ok = sum(1 for c in closed if c.closed_at - c.created_at <= (
        cfg.close_urgent_seconds if c.urgency is Urgency.URGENT else cfg.close_normal_seconds))
    resolved = sum(1 for c in closed if c.satisfaction != "不满意" and c.outcome != "未成功")
    rated = [c for c in cases if c.satisfaction]
    happy = sum(1.0 if c.satisfaction == "满意" else cfg.basic_satisfied_weight
                for c in rated if c.satisfaction in ("满意", "基本满意"))
    disputes = [c for c in cases if c.kind is CaseKind.DISPUTE]
    settled = [c for c in disputes if c.status is Status.CLOSED]
    in_grid = sum(1 for c in settled if c.settle_level == "网格" and c.outcome == "调解成功")
    return AssessmentRow(
        key, name, len(cases), _ratio(on_time, len(cases)), _ratio(close_ok, len(closed)),
        _ratio(resolved, len(closed)), _ratio(happy, len(rated)),
        statistics.median(responded) if responded else None, _p90(responded),
        len(disputes), _ratio(in_grid, len(settled)))


async def _numbers(deps: CasesDeps, code: str, start: float, end: float) -> set[int]:
    found = set(await deps.store.numbers(deps.keys.under(code), start, f"({end}"))
    if not found:  # the root is not indexed (one key for the whole city): ask its children
        for child in await deps.registry.children(code):
            found.update(await deps.store.numbers(deps.keys.under(child.code), start,
                                                  f"({end}"))
    return found


async def assess(deps: CasesDeps, *, start: float, end: float, level: Level,
                 under: str | None = None) -> Assessment:
    cfg = deps.config
    nodes = await deps.registry.nodes_at_level(level, under or "")
    by_node: list[AssessmentRow] = []
    per_officer: dict[str, list[Case]] = defaultdict(list)
    for node in nodes:
        numbers = sorted(await _numbers(deps, node.code, start, end))
        cases: list[Case] = []
        for i in range(0, len(numbers), BATCH):
            cases += await deps.store.many(numbers[i:i + BATCH])
        cases = [c for c in cases if not c.is_clue]  # clues are the issuer's, not the grid's
        by_node.append(row(node.code, node.name, cases, cfg))
        for case in cases:
            # who answers for it: whoever took it; nobody took it: every officer it went to
            for officer in ([case.accepted_by] if case.accepted_by else case.officers):
                per_officer[officer].append(case)
    people = {p.userid: p.name for p in await deps.registry.people(set(per_officer))}
    by_officer = [row(u, people.get(u, u), cs, cfg) for u, cs in sorted(per_officer.items())]
    used = {k: float(v) for k, v in cfg.model_dump().items()
            if k.startswith(("respond_", "close_", "basic_"))}
    return Assessment(start, end, level, by_node, by_officer, used)


def _table(a: Assessment) -> list[list[str | int | float]]:
    rows: list[list[str | int | float]] = [["按节点", *HEADERS[1:]]]
    rows += [r.cells() for r in a.by_node]
    rows.append([])
    rows.append(["按民警", *HEADERS[1:]])
    rows += [r.cells() for r in a.by_officer]
    return rows


def write_csv(a: Assessment, path: Path | str) -> None:
    with Path(path).open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        for r in _table(a):
            writer.writerow(r)


def write_xlsx(a: Assessment, path: Path | str) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    for title, rows in (("按节点", a.by_node), ("按民警", a.by_officer)):
        sheet = book.create_sheet(title)
        sheet.append(list(HEADERS))
        for r in rows:
            sheet.append(r.cells())
    book.save(str(path))


def as_dict(a: Assessment) -> dict[str, object]:
    return {"start": a.start, "end": a.end, "level": a.level.value,
            "by_node": [asdict(r) for r in a.by_node],
            "by_officer": [asdict(r) for r in a.by_officer], "settings": a.settings}
