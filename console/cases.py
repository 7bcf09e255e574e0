"""事件: the queue (overdue first, then by due time), one case's timeline, and the chat's
actions (接单 / 答复 / 到场 / 办结 / 转交) — every read and change through CaseService, which
decides who may and audits (its `Refused` is already audited when raised)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from cases.deps import CasesDeps
from cases.models import Case, Status
from cases.service import BadInput, CaseService, Refused
from console.collect import when
from console.guard import Refusal, Viewer, signed_in, source_of
from console.html import e, form, respond, shell, table

ACTIONS = ("accept", "answer", "arrive", "close", "transfer")
cases_key = web.AppKey("console_cases", CasesDeps)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/cases", signed_in(queue))
    app.router.add_get(r"/console/cases/{cid:[Ee]\d{1,12}}", signed_in(detail))
    app.router.add_post(r"/console/cases/{cid:[Ee]\d{1,12}}/{action:" + "|".join(ACTIONS) + "}",
                        signed_in(act))


def service(request: web.Request) -> CaseService:
    return CaseService(request.app[cases_key], source=source_of(request))


def _overdue(case: Case, now: float) -> bool:
    return case.status in (Status.NEW, Status.REOPENED) and case.respond_due < now


async def queue(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    svc = service(request)
    cases = await svc.queue(viewer.userid)
    now = svc.deps.now()
    rows = []
    for c in cases:
        due = ('<span class="pill over">已超时</span> ' if _overdue(c, now) else "") + e(
            when(c.respond_due))
        rows.append((f'<a href="/console/cases/{e(c.id)}">{e(c.id)}</a>', e(c.urgency.value),
                     e(c.category.value), e(c.text[:30]), e(c.status.label), due,
                     e(c.handler or "—")))
    main = table(("编号", "紧急程度", "类别", "内容", "状态", "接单时限", "处理人"), rows,
                 tid="cases", raw=True)
    return respond(shell("事件", main, who=viewer.label, csrf=viewer.csrf, active="cases",
                         nav=viewer.nav))


async def detail(request: web.Request, viewer: Viewer, flash: str = "",
                 status: int = 200) -> web.StreamResponse:
    svc = service(request)
    try:
        view = await svc.view(viewer.userid, request.match_info["cid"].upper())
    except Refused as refused:
        raise Refusal(403, "无法查看", str(refused)) from None
    except BadInput as bad:
        raise Refusal(404, "无法查看", str(bad)) from None
    c = view.case
    facts = table(("项目", "内容"), [
        ("类别", f"{c.category.value}（{c.kind.label}）"), ("紧急程度", c.urgency.value),
        ("状态", c.status.label), ("上报人", view.reporter_label),
        ("接单时限", when(c.respond_due)), ("处理人", c.handler or "—"),
        ("内容", c.text), ("结果", c.result or "—")], tid="case")
    rows = [(when(x.at), x.actor, x.action, x.text) for x in view.timeline]
    main = (f'<p class="flash" id="flash">{e(flash)}</p>' if flash else "") + facts
    main += ('<section class="card"><h2>时间线</h2>'
             + table(("时间", "人员", "动作", "内容"), rows, tid="timeline") + "</section>")
    main += _actions(viewer, c)
    return respond(shell(f"事件 {c.id}", main, who=viewer.label, csrf=viewer.csrf,
                         active="cases", nav=viewer.nav), status)


def _actions(viewer: Viewer, c: Case) -> str:
    if not c.status.open:
        return ""
    base = f"/console/cases/{c.id}"
    text = '<input name="text" maxlength="500" placeholder="{}" required>'
    out = [form(f"{base}/accept", viewer.csrf, "", "接单", fid="accept"),
           form(f"{base}/answer", viewer.csrf, text.format("答复内容"), "答复", fid="answer"),
           form(f"{base}/arrive", viewer.csrf, "", "到场", fid="arrive"),
           form(f"{base}/close", viewer.csrf, text.format("办结结果"), "办结", fid="close"),
           form(f"{base}/transfer", viewer.csrf, text.format("转交给（人员或 调解）"), "转交",
                fid="transfer")]
    return f'<section class="card actions">{"".join(out)}</section>'


async def act(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    svc = service(request)
    cid, action = request.match_info["cid"].upper(), request.match_info["action"]
    text = str((await request.post()).get("text", ""))[:2000]
    calls: dict[str, Callable[[], Awaitable[Case]]] = {
        "accept": lambda: svc.accept(viewer.userid, cid),
        "answer": lambda: svc.answer(viewer.userid, cid, text),
        "arrive": lambda: svc.arrive(viewer.userid, cid),
        "close": lambda: svc.close(viewer.userid, cid, text),
        "transfer": lambda: svc.transfer(viewer.userid, cid, text),
    }
    try:
        case = await calls[action]()
    except Refused as refused:
        return await detail(request, viewer, str(refused), 403)
    except BadInput as bad:
        return await detail(request, viewer, str(bad), 400)
    return await detail(request, viewer, f"事件 {case.id}：{case.status.label}")
