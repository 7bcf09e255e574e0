"""Notices: the list in scope, one notice's live roll-up and late groups, and the commands
(发布 / 确认 / 批准 / 取消 / 更新 · 撤回 · 已破案 / 已转达) — all through BroadcastService, with
the same rules and audit as the chat (source `console:<ip>`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from broadcasts.api import KINDS, draft_from_json
from broadcasts.deps import Runtime
from broadcasts.grammar import GrammarError
from broadcasts.models import Notice, NoticeKind, NoticeStatus, PairState, PlannedGroup
from broadcasts.progress import Snapshot, snapshot
from broadcasts.service import Reply
from console import rollup
from console.guard import Refusal, Viewer, signed_in, source_of
from console.html import e, form, respond, shell, table
from console.live import LiveHub
from registry.models import Role
from registry.store import Registry

hub_key = web.AppKey("console_live", LiveHub)
RenderFn = Callable[[int], Awaitable[dict[str, Any] | None]]


class RenderCache:
    """The rendered live part of a notice, shared by every viewer in this process for
    `ttl` real seconds (a page may be that stale; its live stream then keeps it current).
    One render at a time per notice: concurrent viewers wait for it instead of repeating it."""

    def __init__(self, render: RenderFn, ttl: float = 1.0) -> None:
        self._render = render
        self._ttl = ttl
        self._entries: dict[int, tuple[float, dict[str, Any] | None]] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def _fresh(self, nid: int) -> tuple[float, dict[str, Any] | None] | None:
        entry = self._entries.get(nid)
        return entry if entry and time.monotonic() - entry[0] < self._ttl else None

    async def get(self, nid: int) -> dict[str, Any] | None:
        entry = self._fresh(nid)
        if entry is not None:
            return entry[1]
        async with self._locks.setdefault(nid, asyncio.Lock()):
            entry = self._fresh(nid)
            if entry is not None:
                return entry[1]
            return await self.refresh(nid)

    async def refresh(self, nid: int) -> dict[str, Any] | None:
        value = await self._render(nid)
        now = time.monotonic()
        self._entries[nid] = (now, value)
        for old in [k for k, (at, _) in self._entries.items() if now - at > 60]:
            del self._entries[old]
            self._locks.pop(old, None)
        return value


cache_key = web.AppKey("console_render", RenderCache)
LIST_LIMIT = 50
SCAN_LIMIT = 400
KEEPALIVE = 15.0  # real seconds between SSE comments (proxies drop idle streams)
FOLLOW_WORDS = {NoticeKind.UPDATE: "更新", NoticeKind.RETRACT: "撤回",
                NoticeKind.SOLVED: "已破案"}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/notices", signed_in(list_page))
    app.router.add_post("/console/notices", signed_in(issue))
    app.router.add_get(r"/console/notices/{nid:\d+}", signed_in(detail))
    app.router.add_get(r"/console/notices/{nid:\d+}/late", signed_in(late_page))
    app.router.add_get(r"/console/notices/{nid:\d+}/live", signed_in(live))
    app.router.add_post(r"/console/notices/{nid:\d+}/{action:confirm|approve|cancel|ack}",
                        signed_in(act))
    app.router.add_post(r"/console/notices/{nid:\d+}/followup", signed_in(follow_up))


async def in_scope(viewer: Viewer, limit: int = LIST_LIMIT) -> list[Notice]:
    """Newest notices this person may follow: police — issued by them or every target
    covered (as 进度 allows); grid workers — notices whose target holds their grid (已转达)."""
    rt = viewer.deps.rt
    ids = await rt.redis.zrevrange(rt.keys.index(), 0, SCAN_LIMIT - 1)
    out: list[Notice] = []
    for raw in ids:
        notice = await rt.notices.get(int(str(raw)))
        if notice is not None and await _visible(viewer, notice):
            out.append(notice)
            if len(out) >= limit:
                break
    return out


async def _visible(viewer: Viewer, notice: Notice) -> bool:
    person, registry = viewer.person, viewer.deps.registry
    if notice.issuer == person.userid:
        return True
    if person.is_police:
        codes = notice.target.codes
        return bool(codes) and all([await viewer.covers(c) for c in codes])
    if person.role is Role.GRID_WORKER:
        for node in person.nodes:
            for code in notice.target.codes:
                if await registry.is_within(node, code):
                    return True
    return False


def _row(n: Notice) -> tuple[str, ...]:
    link = f'<a href="/console/notices/{n.id}">{e(n.title)}</a>'
    return (link, e(n.target_label), e(n.status.label), e(n.content.text[:40]))


async def list_page(request: web.Request, viewer: Viewer, flash: str = "",
                    status: int = 200) -> web.StreamResponse:
    notices = await in_scope(viewer)
    main = (f'<p class="flash">{e(flash)}</p>' if flash else "")
    main += table(("通知", "范围", "状态", "内容"), [_row(n) for n in notices], tid="notices",
                  raw=True)
    if viewer.person.role is Role.OFFICER:
        main += _issue_form(viewer)
    return respond(shell("通知", main, who=viewer.label, csrf=viewer.csrf, active="notices",
                         nav=viewer.nav), status)


def _issue_form(viewer: Viewer) -> str:
    fields = ('<label>级别 <select name="level" id="level">'
              '<option value="urgent">紧急预警</option>'
              '<option value="assist">协查通报</option><option value="normal" selected>普通通知'
              '</option></select></label>'
              '<label>范围（辖区名称，多个用空格分隔）<input name="targets" id="targets" '
              'maxlength="200" required></label>'
              '<label>内容 <textarea name="text" id="text" maxlength="2000" rows="4" required>'
              "</textarea></label>")
    issue_form = form("/console/notices", viewer.csrf, fields, "预览并发布", fid="issue")
    return f'<section class="card"><h2>发布通知</h2>{issue_form}</section>'


async def issue(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    data = await request.post()
    svc = viewer.deps.broadcasts()
    targets = str(data.get("targets", ""))[:200].split()
    body: dict[str, Any] = {"level": str(data.get("level", ""))[:20], "targets": targets,
                            "text": str(data.get("text", ""))[:4000]}
    try:
        draft = draft_from_json(body, svc.rt.clock.now())
    except GrammarError as error:
        await svc.rt.audit.record(viewer.userid, "broadcast.issue", "error", detail=str(error),
                                  source=source_of(request))
        return await list_page(request, viewer, str(error), 400)
    if not targets:
        return await list_page(request, viewer, "范围：请填写辖区名称，例如 交口县", 400)
    reply = await svc.issue(viewer.userid, draft, source=source_of(request))
    return await _after(request, viewer, reply)


async def _after(request: web.Request, viewer: Viewer, reply: Reply) -> web.StreamResponse:
    status = {"refused": 403, "error": 400}.get(reply.outcome, 200)
    if reply.notice_id is None:
        return await list_page(request, viewer, reply.text, status)
    return await _detail(request, viewer, reply.notice_id, reply.text, status)


async def act(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    svc, nid = viewer.deps.broadcasts(), int(request.match_info["nid"])
    action = request.match_info["action"]
    method = {"confirm": svc.confirm, "approve": svc.approve, "cancel": svc.cancel,
              "ack": svc.acknowledge}[action]
    reply = await method(viewer.userid, nid, source=source_of(request))
    if action == "ack":  # grid workers have no progress view: answer on the list
        return await list_page(request, viewer, reply.text,
                               {"refused": 403, "error": 400}.get(reply.outcome, 200))
    return await _after(request, viewer, reply)


async def follow_up(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    data = await request.post()
    kind = KINDS.get(str(data.get("kind", "")))
    if kind is None:
        raise Refusal(400, "无法发送", "类型：请选择 更新 / 撤回 / 已破案")
    text = f"{request.match_info['nid']} {str(data.get('text', ''))[:2000]}"
    reply = await viewer.deps.broadcasts().follow_up_text(
        viewer.userid, FOLLOW_WORDS[kind], text, source=source_of(request))
    return await _after(request, viewer, reply)


async def detail(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await _detail(request, viewer, int(request.match_info["nid"]))


async def _allowed(request: web.Request, viewer: Viewer, nid: int) -> None:
    """进度's rule through the service: it decides, and it audits the view or the refusal."""
    reply = await viewer.deps.broadcasts().may_view(viewer.userid, nid,
                                                    source=source_of(request))
    if not reply.ok:
        raise Refusal(403 if reply.outcome == "refused" else 404, "无法查看", reply.text)


async def _detail(request: web.Request, viewer: Viewer, nid: int, flash: str = "",
                  status: int = 200) -> web.StreamResponse:
    await _allowed(request, viewer, nid)
    view = await request.app[cache_key].get(nid)
    assert view is not None
    notice = await viewer.deps.rt.notices.get(nid)
    assert notice is not None
    main = (f'<p class="flash" id="flash">{e(flash)}</p>' if flash else "")
    main += (f'<p class="meta">{e(notice.target_label)} · {e(notice.status.label)} · '
             f'<a href="/console/notices/{nid}/late" id="late-link">迟到的群</a></p>'
             f'<blockquote>{e(notice.content.text)}</blockquote>'
             f'<div id="live" data-src="/console/notices/{nid}/live">{view["html"]}</div>'
             + _actions(viewer, notice))
    return respond(shell(notice.title, main, who=viewer.label, csrf=viewer.csrf,
                         active="notices", nav=viewer.nav), status)


def _actions(viewer: Viewer, n: Notice) -> str:
    if viewer.person.role is not Role.OFFICER:
        return ""
    base = f"/console/notices/{n.id}"
    out = []
    if n.status is NoticeStatus.PENDING_CONFIRM and n.issuer == viewer.userid:
        out.append(form(f"{base}/confirm", viewer.csrf, "", "确认发送", fid="confirm"))
        out.append(form(f"{base}/cancel", viewer.csrf, "", "取消", fid="cancel"))
    if n.status is NoticeStatus.PENDING_APPROVAL and n.issuer != viewer.userid:
        out.append(form(f"{base}/approve", viewer.csrf, "", "批准", fid="approve"))
    if n.status in (NoticeStatus.SENDING, NoticeStatus.SETTLED) and n.kind is NoticeKind.ORIGINAL:
        fields = ('<select name="kind"><option value="update">更新</option>'
                  '<option value="retract">撤回</option><option value="solved">已破案</option>'
                  '</select><input name="text" maxlength="2000" placeholder="内容或原因">')
        out.append(form(f"{base}/followup", viewer.csrf, fields, "发送后续", fid="followup"))
    return f'<section class="card actions">{"".join(out)}</section>' if out else ""


@dataclass(frozen=True, slots=True)
class Plan:
    """A released notice's plan never changes: its groups and the names of the nodes on
    their paths are read once per process (PLAN_SECONDS), not at every update."""

    groups: dict[str, PlannedGroup]
    names: dict[str, str]
    at: float
    rt: Runtime  # held, so that its id cannot be reused by another Runtime while cached


# keyed by the Runtime too: notice ids repeat across the Redis servers one process may serve
_plans: dict[tuple[int, int], Plan] = {}
PLAN_SECONDS = 300.0


async def _plan(rt: Runtime, registry: Registry, nid: int) -> Plan:
    now = time.monotonic()
    plan = _plans.get((id(rt), nid))
    if plan is None or now - plan.at > PLAN_SECONDS:
        groups = await rt.plans.groups(nid)
        codes = {c for g in groups.values() for c in g.path}
        plan = Plan(groups, await rollup.node_names(registry, codes), now, rt)
        for old in [k for k, p in _plans.items() if now - p.at > PLAN_SECONDS]:
            del _plans[old]
        _plans[(id(rt), nid)] = plan
    return plan


async def render(rt: Runtime, registry: Registry, nid: int) -> dict[str, Any] | None:
    """The live part of a notice page (also what SSE pushes): one read of the pairs, the
    plan from the process's cache."""
    notice = await rt.notices.get(nid)
    if notice is None:
        return None
    plan = await _plan(rt, registry, nid) if notice.started_at else \
        Plan(await rt.plans.groups(nid), {}, 0.0, rt)
    pairs = await rt.state.pairs(nid)
    acks = int(await rt.redis.hlen(rt.keys.acks(nid)))
    snap = Snapshot(notice, rt.clock.now(), plan.groups, pairs, acks)
    tree = rollup.build(snap)
    rollup.name_nodes(tree, plan.names or await rollup.node_names(
        registry, {c for g in plan.groups.values() for c in g.path}))
    counts = snap.counts()
    summary = rollup.summary(snap)
    nodes, waiting = rollup.changes(tree)
    html = (f'<div id="summary">{summary}</div><section class="card"><h2>逐级送达</h2>'
            f'<div class="tree">{rollup.tree_html(tree)}</div></section>')
    return {"html": html, "summary": summary, "nodes": nodes, "waiting": waiting,
            "delivered": counts.get(PairState.DELIVERED, 0), "total": snap.total,
            "status": snap.notice.status.value}


def live_part(view: dict[str, Any] | None) -> dict[str, Any]:
    """An update for a page already showing the tree: everything but the full fragment."""
    return {k: v for k, v in (view or {}).items() if k != "html"}


async def late_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    nid = int(request.match_info["nid"])
    await _allowed(request, viewer, nid)
    snap = await snapshot(viewer.deps.rt, nid)
    assert snap is not None
    rows = await rollup.late_groups(viewer.deps.registry, snap)
    intro = ("时限未到，暂无迟到的群。" if snap.now < snap.deadline_at
             else f"时限已过，{len(rows)} 个群未按时送达。")
    main = (f'<p class="meta">{e(intro)} <a href="/console/notices/{nid}">返回进度</a></p>'
            + rollup.late_table(rows))
    return respond(shell(f"{snap.notice.title} 迟到的群", main, who=viewer.label,
                         csrf=viewer.csrf, active="notices", nav=viewer.nav))


async def live(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    nid = int(request.match_info["nid"])
    await _allowed(request, viewer, nid)
    hub = request.app[hub_key]
    queue = hub.watch(nid)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    try:
        first = await request.app[cache_key].get(nid)
        await response.write(_event(json.dumps({"since": 0, **live_part(first)},
                                               ensure_ascii=False)))
        while True:
            try:
                data = await asyncio.wait_for(queue.get(), KEEPALIVE)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            await response.write(_event(data))
    except ConnectionResetError:
        pass
    finally:
        hub.unwatch(nid, queue)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


def _event(data: str) -> bytes:
    return f"event: progress\ndata: {data}\n\n".encode()
