"""The broadcast HTTP API (aiohttp), authenticated by officer-bound API keys.

    Authorization: Bearer gbk_…                      (gridbot broadcast apikey create)
    POST /api/broadcasts                 {"text": "通知 紧急预警 范围：… 内容：…"}
                                         or {"level", "targets", "exclude", "tags", "text",
                                             "markdown", "image_url", "link_url", "link_title",
                                             "schedule_at"}
    POST /api/broadcasts/{id}/confirm | /approve | /cancel
    POST /api/broadcasts/{id}/followups  {"kind": "update|retract|solved", "text": "…"}
    GET  /api/broadcasts/{id}            progress (counts, roll-up text)
    GET  /api/broadcasts/{id}/groups     every group with its state and latency

Answers are JSON {"ok", "message", "notice_id", …}; 401 without a valid key, 403 for a
refusal (the same rules and audit as in app chat, source "api"), 400 for a bad request.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot import appkeys
from broadcasts.apikeys import ApiKeys
from broadcasts.grammar import LEVEL_WORDS, GrammarError, NoticeDraft, parse_time
from broadcasts.models import Content, NoticeKind, NoticeLevel
from broadcasts.progress import snapshot
from broadcasts.schedule import bind_scheduler, bound_scheduling, runtime_from_app
from broadcasts.service import BroadcastService, Reply

routes = web.RouteTableDef()
STATUS = {"ok": 200, "refused": 403, "error": 400, "": 200}
KINDS = {k.value: k for k in NoticeKind if k is not NoticeKind.ORIGINAL}
View = Callable[[web.Request, BroadcastService, str], Awaitable[web.Response]]


def extension(app: web.Application) -> None:
    """Add the API routes, and bind the app's scheduler for 定时 (bot.app extensions=)."""
    app.router.add_routes(routes)
    app.on_startup.append(_bind_scheduler)


async def _bind_scheduler(app: web.Application) -> None:
    if appkeys.scheduler in app:
        bind_scheduler(app[appkeys.scheduler])


def authed(view: View) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Resolve the bearer key to its officer, or answer 401."""
    async def wrapper(request: web.Request) -> web.Response:
        rt = runtime_from_app(request.app)
        header = request.headers.get("Authorization", "")
        key = header.removeprefix("Bearer ").strip()
        actor = await ApiKeys(rt.redis, rt.keys, rt.clock).officer_for(key) if key else None
        if actor is None:
            await rt.audit.record("api", "broadcast.api", "refused", detail="无效或缺少接口密钥",
                                  source=f"api:{request.remote}")
            return _json({"ok": False, "message": "无效或缺少接口密钥"}, 401)
        return await view(request, BroadcastService(rt, bound_scheduling()), actor)
    return wrapper


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(data, status=status,
                             dumps=lambda d: json.dumps(d, ensure_ascii=False))


def _answer(reply: Reply) -> web.Response:
    body = {"ok": reply.ok, "message": reply.text, "notice_id": reply.notice_id, **reply.data}
    return _json(body, STATUS.get(reply.outcome, 400))


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="请求体必须是 JSON") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="请求体必须是 JSON 对象")
    return data


def _source(request: web.Request) -> str:
    return f"api:{request.remote}"


@routes.post("/api/broadcasts")
@authed
async def create(request: web.Request, svc: BroadcastService, actor: str) -> web.Response:
    body = await _body(request)
    if "level" not in body:
        return _answer(await svc.issue_text(actor, str(body.get("text", "")),
                                            source=_source(request)))
    try:
        draft = draft_from_json(body, svc.rt.clock.now())
    except GrammarError as error:
        await svc.rt.audit.record(actor, "broadcast.issue", "error", detail=str(error),
                                  source=_source(request))
        return _json({"ok": False, "message": str(error)}, 400)
    return _answer(await svc.issue(actor, draft, source=_source(request)))


def draft_from_json(body: dict[str, Any], now: float) -> NoticeDraft:
    """A structured request as a NoticeDraft (level by value or Chinese name)."""
    raw = str(body.get("level", ""))
    level = LEVEL_WORDS.get(raw) or next((lv for lv in NoticeLevel if lv.value == raw), None)
    if level is None:
        raise GrammarError("level 须为 urgent/assist/normal 或 紧急预警/协查通报/普通通知")
    text = str(body.get("text", "")).strip()
    if not text:
        raise GrammarError("缺少 text")
    when = body.get("schedule_at")
    schedule_at = (float(when) if isinstance(when, int | float)
                   else parse_time(str(when), now) if when else None)
    return NoticeDraft(
        level=level,
        content=Content(text, bool(body.get("markdown")), str(body.get("image_url", "")),
                        str(body.get("link_url", "")), str(body.get("link_title", ""))),
        targets=tuple(str(t) for t in body.get("targets", ())),
        exclude=tuple(str(t) for t in body.get("exclude", ())),
        tags=tuple(str(t) for t in body.get("tags", ())), schedule_at=schedule_at)


def _nid(request: web.Request) -> int:
    try:
        return int(request.match_info["nid"])
    except ValueError:
        raise web.HTTPNotFound() from None


@routes.post(r"/api/broadcasts/{nid:\d+}/{action:confirm|approve|cancel}")
@authed
async def act(request: web.Request, svc: BroadcastService, actor: str) -> web.Response:
    method = {"confirm": svc.confirm, "approve": svc.approve,
              "cancel": svc.cancel}[request.match_info["action"]]
    return _answer(await method(actor, _nid(request), source=_source(request)))


@routes.post(r"/api/broadcasts/{nid:\d+}/followups")
@authed
async def follow_up(request: web.Request, svc: BroadcastService, actor: str) -> web.Response:
    body = await _body(request)
    kind = KINDS.get(str(body.get("kind", "")))
    if kind is None:
        return _json({"ok": False, "message": "kind 须为 update / retract / solved"}, 400)
    word = {NoticeKind.UPDATE: "更新", NoticeKind.RETRACT: "撤回",
            NoticeKind.SOLVED: "已破案"}[kind]
    return _answer(await svc.follow_up_text(actor, word, f"{_nid(request)} {body.get('text', '')}",
                                            source=_source(request)))


@routes.get(r"/api/broadcasts/{nid:\d+}")
@authed
async def progress(request: web.Request, svc: BroadcastService, actor: str) -> web.Response:
    return _answer(await svc.progress(actor, _nid(request), source=_source(request)))


@routes.get(r"/api/broadcasts/{nid:\d+}/groups")
@authed
async def groups(request: web.Request, svc: BroadcastService, actor: str) -> web.Response:
    reply = await svc.progress(actor, _nid(request), source=_source(request))
    if not reply.ok:
        return _answer(reply)
    snap = await snapshot(svc.rt, _nid(request))
    assert snap is not None
    rows = [{"chat_id": c, "name": g.name, "kind": g.kind, "node": g.node, "owner": g.owner,
             "officers": list(g.officers), "state": snap.pairs[c].state.value,
             "detail": snap.pairs[c].detail, "latency": snap.latency(c)}
            for c, g in sorted(snap.groups.items()) if c in snap.pairs]
    return _json({"ok": True, "notice_id": snap.notice.id, "groups": rows})
