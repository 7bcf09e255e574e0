"""审计: the audit log of the person's subtree (民警, 派出所管理员, 乡镇街道负责人), filterable by
person, action, outcome and text — every refusal and every view of protected data included.

An entry belongs to the subtree when its actor is staff whose nodes all lie inside it, or when
its target is a node inside it (someone else's refused attempt on this subtree); entries of
no staff member (failed sign-ins, the system) only to those covering a whole city.
Looking at the log is itself audited.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from bot.audit import AuditEntry
from collect.validate import CHINA_TZ
from console.guard import AUDIT_ROLES, Refusal, Viewer, signed_in, source_of
from console.html import e, respond, shell, table
from registry.models import Level

READ = 5000
SHOW = 300
OUTCOMES = {"ok": "成功", "refused": "拒绝", "error": "错误"}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/audit", signed_in(page))


async def page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    if viewer.person.role not in AUDIT_ROLES:
        await viewer.deps.audit.record(viewer.userid, "console.audit", "refused",
                                       detail=viewer.person.role.label, source=source_of(request))
        raise Refusal(403, "无权查看", "审计日志仅限民警、派出所管理员和乡镇街道负责人查看。")
    q = {k: request.query.get(k, "")[:40].strip() for k in ("actor", "action", "outcome", "q")}
    entries = await viewer.deps.audit.entries(count=READ)
    shown = [x for x in await in_subtree(viewer, entries) if _match(x, q)][:SHOW]
    await viewer.deps.audit.record(viewer.userid, "console.audit", "ok",
                                   detail=f"筛选 {q}"[:120], source=source_of(request))
    rows = [(datetime.fromtimestamp(x.at, tz=CHINA_TZ).strftime("%m-%d %H:%M:%S"), x.actor,
             x.action, OUTCOMES.get(x.outcome, x.outcome), x.target, x.detail[:80], x.source)
            for x in shown]
    options = "".join(f'<option value="{k}"{" selected" if q["outcome"] == k else ""}>{v}'
                      f"</option>" for k, v in (("", "全部"), *OUTCOMES.items()))
    filters = (f'<form method="get" class="filters card" id="filters">'
               f'<label>人员 <input name="actor" value="{e(q["actor"])}"></label>'
               f'<label>操作 <input name="action" value="{e(q["action"])}" '
               f'placeholder="如 collect.lookup"></label>'
               f'<label>结果 <select name="outcome">{options}</select></label>'
               f'<label>内容 <input name="q" value="{e(q["q"])}"></label>'
               f'<button type="submit">筛选</button></form>')
    main = filters + table(("时间", "人员", "操作", "结果", "对象", "说明", "来源"), rows,
                           tid="audit")
    return respond(shell("审计日志", main, who=viewer.label, csrf=viewer.csrf, active="audit",
                         nav=viewer.nav))


def _match(x: AuditEntry, q: dict[str, str]) -> bool:
    return ((not q["actor"] or x.actor == q["actor"])
            and (not q["action"] or x.action.startswith(q["action"]))
            and (not q["outcome"] or x.outcome == q["outcome"])
            and (not q["q"] or q["q"] in x.detail or q["q"] in x.target))


async def in_subtree(viewer: Viewer, entries: list[AuditEntry]) -> list[AuditEntry]:
    registry = viewer.deps.registry
    people = {p.userid: p for p in await registry.people({x.actor for x in entries})}
    homes = await viewer.home()
    whole_city = any(n.level is Level.CITY for n in homes)
    covered: dict[str, bool] = {}

    async def covers(code: str) -> bool:
        if code not in covered:
            covered[code] = await viewer.covers(code)
        return covered[code]

    out = []
    for x in entries:
        person = people.get(x.actor)
        if x.actor == viewer.userid:
            keep = True
        elif person is not None and person.nodes:
            keep = all([await covers(n) for n in person.nodes])
        else:
            keep = whole_city
        if not keep and x.target.isdigit() and len(x.target) >= 6:
            keep = await covers(x.target)
        if keep:
            out.append(x)
    return out
