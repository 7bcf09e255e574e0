"""一标三实: campaign completion per grid, the review queue (核查 通过 / 退回), a record's
history, and exports — all through collect's services (officer.todo / review / lookup,
export.export), whose Access decides who may and which audit every view and refusal.
Numbers are shown only masked (Record.display); exports from the console are masked too.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

from aiohttp import web

from collect import officer
from collect.campaign import Campaigns
from collect.export import ExportForbiddenError, ExportQuery, export
from collect.models import Record, RecordKind
from collect.results import Outcome
from collect.validate import CHINA_TZ
from console.guard import Refusal, Viewer, signed_in, source_of
from console.html import e, form, pct, respond, shell, table

SHOWN = ("name", "id_number", "phone", "address", "population_type", "relation", "unit_name")
LABELS = {"name": "姓名", "id_number": "身份证号", "phone": "手机号", "address": "地址",
          "population_type": "人口类型", "relation": "关系", "unit_name": "单位名称"}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/collect", signed_in(page))
    app.router.add_post(r"/console/collect/review/{rid:[A-Za-z]\d{1,12}}", signed_in(review))
    app.router.add_get(r"/console/collect/records/{rid:[A-Za-z]\d{1,12}}", signed_in(history))
    app.router.add_post("/console/collect/export", signed_in(download))


def when(at: float) -> str:
    return datetime.fromtimestamp(at, tz=CHINA_TZ).strftime("%m-%d %H:%M") if at else "—"


async def page(request: web.Request, viewer: Viewer, flash: str = "",
               status: int = 200) -> web.StreamResponse:
    deps = viewer.deps.collect
    main = f'<p class="flash" id="flash">{e(flash)}</p>' if flash else ""
    main += await _campaigns(viewer)
    todo = await officer.todo(deps, viewer.userid, limit=20)
    rows = [_todo_row(viewer, r) for r in todo.pending]
    main += (f'<section class="card"><h2>待核查（{todo.pending_total}）</h2>'
             + table(("编号", "类型", "内容", "来源", "更新", "核查"), rows, tid="review",
                     raw=True) + "</section>")
    rows = [(f'<a href="/console/collect/records/{e(r.id)}">{e(r.id)}</a>', e(r.kind.label),
             e(_summary(r)), e(r.note)) for r in todo.returned]
    main += (f'<section class="card"><h2>已退回（{todo.returned_total}）</h2>'
             + table(("编号", "类型", "内容", "退回原因"), rows, raw=True) + "</section>")
    main += _export_form(viewer)
    return respond(shell("一标三实", main, who=viewer.label, csrf=viewer.csrf,
                         active="collect", nav=viewer.nav), status)


async def _campaigns(viewer: Viewer) -> str:
    deps = viewer.deps.collect
    rows = []
    for campaign in await Campaigns(deps).active():
        for grid in await Campaigns(deps).progress(campaign):
            if await viewer.covers(grid.grid.code):
                rows.append((campaign.id, grid.grid.name, str(grid.covered), str(grid.expected),
                             pct(grid.completion if grid.expected else None)))
    rows.sort(key=lambda r: r[4])
    return ('<section class="card"><h2>集中采集：各网格完成率</h2>'
            + table(("采集", "网格", "已采户数", "应采户数", "完成率"), rows[:300], tid="campaign")
            + "</section>")


def _summary(r: Record) -> str:
    return "，".join(f"{LABELS[f]} {r.display(f)}" for f in SHOWN if r.display(f))[:120]


def _todo_row(viewer: Viewer, r: Record) -> tuple[str, ...]:
    action = f"/console/collect/review/{r.id}"
    ok = form(action, viewer.csrf, '<input type="hidden" name="verdict" value="pass">', "通过",
              fid=f"pass-{r.id}")
    back = form(action, viewer.csrf, '<input type="hidden" name="verdict" value="return">'
                '<input name="reason" maxlength="200" placeholder="退回原因" required>', "退回",
                fid=f"return-{r.id}")
    return (f'<a href="/console/collect/records/{e(r.id)}">{e(r.id)}</a>', e(r.kind.label),
            e(_summary(r)), e("居民自主申报" if r.source == "form" else r.source),
            e(when(r.updated_at)), f'<div class="inline">{ok}{back}</div>')


async def review(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    data = await request.post()
    approve = data.get("verdict") == "pass"
    result = await officer.review(viewer.deps.collect, viewer.userid, request.match_info["rid"],
                                  approve, str(data.get("reason", ""))[:200],
                                  source_of(request))
    if result.outcome is Outcome.STORED and result.record is not None:
        return await page(request, viewer, f"{result.record.id}：{result.record.state.label}")
    text = result.message or "；".join(i.message for i in result.issues)
    return await page(request, viewer, text, 403 if result.outcome is Outcome.FORBIDDEN else 400)


async def history(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    found = await officer.lookup(viewer.deps.collect, viewer.userid, request.match_info["rid"],
                                 source_of(request))
    if not found.allowed or found.record is None:
        raise Refusal(403, "无法查看", found.message)
    r = found.record
    rows = [(when(h.at), h.actor, str(h.kind.value), h.reason,
             "；".join(f"{c.field}：{c.old or '—'} → {c.new}" for c in h.changes))
            for h in found.history]
    facts = table(("项目", "内容"), [(LABELS[f], r.display(f)) for f in SHOWN if r.display(f)]
                  + [("状态", r.state.label), ("所在节点", r.node)], tid="record")
    main = facts + '<section class="card"><h2>变更记录</h2>' + table(
        ("时间", "操作人", "操作", "原因", "变更"), rows, tid="history") + "</section>"
    return respond(shell(f"记录 {r.id}", main, who=viewer.label, csrf=viewer.csrf,
                         active="collect", nav=viewer.nav))


def _export_form(viewer: Viewer) -> str:
    options = "".join(f'<option value="{k.value}">{k.label}</option>' for k in
                      (RecordKind.PERSON, RecordKind.HOUSE, RecordKind.UNIT))
    nodes = "".join(f'<option value="{e(n)}">{e(n)}</option>' for n in viewer.person.nodes)
    fields = (f'<label>辖区 <select name="node">{nodes}</select></label>'
              f'<label>类型 <select name="kind">{options}</select></label>')
    return ('<section class="card"><h2>导出（号码已脱敏；仅限辖区民警）</h2>'
            + form("/console/collect/export", viewer.csrf, fields, "导出 XLSX", fid="export")
            + "</section>")


async def download(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    data = await request.post()
    try:
        kind = RecordKind(str(data.get("kind", "")))
    except ValueError:
        raise Refusal(400, "无法导出", "类型：请选择 人口 / 房屋 / 单位") from None
    query = ExportQuery(str(data.get("node", ""))[:64], kind, fmt="xlsx", masked=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"一标三实-{kind.label}.xlsx"
        try:
            await export(viewer.deps.collect, viewer.userid, query, out, source_of(request))
        except ExportForbiddenError as error:
            raise Refusal(403, "无法导出", str(error)) from None
        body = out.read_bytes()
    return web.Response(body=body, headers=_attachment(f"collect-{kind.value}.xlsx"))


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Type":
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
