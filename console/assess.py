"""考核 for a chosen node and period: notices on time, 已转达 rate and collection completeness
(console/figures.py) beside the cases figures of cases/assess.py, per child node and per
person, as tables, SVG charts and an XLSX download (audited as console.export)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web
from openpyxl import Workbook

from cases.assess import Assessment
from cases.assess import assess as cases_assess
from collect.validate import CHINA_TZ
from console import charts
from console.cases import cases_key
from console.figures import Figures, collection_figures, notice_figures
from console.guard import Refusal, Viewer, signed_in, source_of
from console.html import e, pct, respond, shell, table

DEFAULT_DAYS = 30
NODE_HEAD = ("辖区", "通知群次", "按时送达率", "已转达率", "采集完成率", "事件数", "响应率",
             "及时办结率", "解决率", "满意率", "网格化解率")
PERSON_HEAD = ("人员", "通知群次", "按时送达率", "已转达率")
OFFICER_HEAD = ("民警", "事件数", "响应率", "及时办结率", "解决率", "满意率", "首次响应中位数")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/assess", signed_in(page))
    app.router.add_get("/console/assess.xlsx", signed_in(xlsx))


def _period(request: web.Request, now: float) -> tuple[float, float, str, str]:
    today = dt.datetime.fromtimestamp(now, tz=CHINA_TZ).date()
    try:
        start = dt.date.fromisoformat(request.query.get("from", "")[:10] or
                                      str(today - dt.timedelta(days=DEFAULT_DAYS)))
        end = dt.date.fromisoformat(request.query.get("to", "")[:10] or str(today))
    except ValueError:
        raise Refusal(400, "日期有误", "起止日期：请按 2026-12-01 的格式填写") from None
    if end < start:
        raise Refusal(400, "日期有误", "截止日期不能早于开始日期")
    lo = dt.datetime.combine(start, dt.time(0), CHINA_TZ).timestamp()
    hi = dt.datetime.combine(end, dt.time(23, 59, 59), CHINA_TZ).timestamp()
    return lo, hi, str(start), str(end)


@dataclass
class Report:
    figures: Figures
    cases: Assessment
    start: str
    end: str


async def compute(request: web.Request, viewer: Viewer) -> Report:
    home = await viewer.home()
    node = await viewer.node(request.query.get("node") or (home[0].code if home else ""),
                             source_of(request))
    lo, hi, start, end = _period(request, viewer.deps.clock.now())
    children = await viewer.deps.registry.children(node.code) or [node]
    figures = await notice_figures(viewer.deps.rt, node, children, lo, hi)
    await collection_figures(viewer.deps.collect, figures)
    names = {p.userid: p.name for p in
             await viewer.deps.registry.people([t.key for t in figures.by_person])}
    for t in figures.by_person:
        t.name = names.get(t.key, t.key)
    figures.by_person.sort(key=lambda t: (t.on_time_rate or 0.0, t.key))
    found = await cases_assess(request.app[cases_key], start=lo, end=hi,
                               level=children[0].level, under=node.code)
    return Report(figures, found, start, end)


def node_rows(r: Report) -> list[Sequence[str]]:
    by_key = {row.key: row for row in r.cases.by_node}
    out: list[Sequence[str]] = []
    for t in r.figures.by_node:
        c = by_key.get(t.key)
        case_cells = ((str(c.cases), pct(c.response_rate), pct(c.on_time_close_rate),
                       pct(c.resolution_rate), pct(c.satisfaction_rate),
                       pct(c.disputes_settled_in_grid_share)) if c else ("0",) + ("—",) * 5)
        out.append((t.name, str(t.pairs), pct(t.on_time_rate), pct(t.ack_rate),
                    pct(t.completeness), *case_cells))
    return out


def officer_rows(r: Report) -> list[tuple[str, ...]]:
    return [(c.name, str(c.cases), pct(c.response_rate), pct(c.on_time_close_rate),
             pct(c.resolution_rate), pct(c.satisfaction_rate),
             "—" if c.median_first_response_s is None
             else f"{c.median_first_response_s / 60:.1f} 分钟")
            for c in r.cases.by_officer]


def person_rows(f: Figures) -> list[tuple[str, ...]]:
    return [(t.name, str(t.pairs), pct(t.on_time_rate), pct(t.ack_rate)) for t in f.by_person]


async def page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    r = await compute(request, viewer)
    f, start, end = r.figures, r.start, r.end
    q = f"node={e(f.node.code)}&amp;from={e(start)}&amp;to={e(end)}"
    filters = (f'<form method="get" class="filters card" id="period">'
               f'<input type="hidden" name="node" value="{e(f.node.code)}">'
               f'<label>开始 <input type="date" name="from" value="{e(start)}"></label>'
               f'<label>截止 <input type="date" name="to" value="{e(end)}"></label>'
               f'<button type="submit">查询</button>'
               f'<a class="btn alt" id="xlsx" href="/console/assess.xlsx?{q}">导出 XLSX</a>'
               "</form>")
    chart = charts.bars("按时送达率 / 已转达率",
                        [(t.name, t.on_time_rate, t.ack_rate) for t in f.by_node],
                        ("按时送达", "已转达"))
    chart2 = charts.bars("采集完成率", [(t.name, t.completeness, None) for t in f.by_node])
    chart3 = charts.bars("事件响应率 / 满意率", [(c.name, c.response_rate, c.satisfaction_rate)
                                          for c in r.cases.by_node], ("响应", "满意"))
    main = (filters + f'<p class="meta">{e(f.node.name)} · {e(start)} 至 {e(end)} · '
            f"统计通知 {f.notices} 条</p>"
            f'<section class="card"><h2>按辖区</h2>{chart}{chart2}{chart3}'
            + table(NODE_HEAD, node_rows(r), tid="by-node") + "</section>"
            '<section class="card"><h2>按人员（民警·事件）</h2>'
            + table(OFFICER_HEAD, officer_rows(r), tid="by-officer") + "</section>"
            '<section class="card"><h2>按人员（网格员·通知）</h2>'
            + table(PERSON_HEAD, person_rows(f), tid="by-person") + "</section>")
    return respond(shell("考核", main, who=viewer.label, csrf=viewer.csrf, active="assess",
                         nav=viewer.nav))


async def xlsx(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    r = await compute(request, viewer)
    f, start, end = r.figures, r.start, r.end
    book = Workbook()
    _sheet(book.active, "按辖区", NODE_HEAD, node_rows(r))
    _sheet(book.create_sheet(), "按民警", OFFICER_HEAD, officer_rows(r))
    _sheet(book.create_sheet(), "按网格员", PERSON_HEAD, person_rows(f))
    out = io.BytesIO()
    book.save(out)
    await viewer.deps.audit.record(viewer.userid, "console.export", "ok", target=f.node.code,
                                   detail=f"考核 {start}~{end}", source=source_of(request))
    name = f"assess-{f.node.code}-{start}-{end}.xlsx"
    return web.Response(body=out.getvalue(), headers={
        "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


def _sheet(sheet: object, title: str, head: Sequence[str],
           rows: Sequence[Sequence[str]]) -> None:
    ws = sheet  # openpyxl worksheets are untyped here
    ws.title = title  # type: ignore[attr-defined]
    ws.append(list(head))  # type: ignore[attr-defined]
    for row in rows:  # names come from the registry: never formulas, but guard anyway
        ws.append([f"'{c}" if c[:1] in "=+-@" else c for c in row])  # type: ignore[attr-defined]

