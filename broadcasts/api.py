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
refusal (the same rules and audit as in app chat, source "api"), 400 for a bad request:
every field is checked before anything is stored (broadcasts/validate.py: types, sizes,
unknown fields, schedule_at finite / future / at most broadcast.max_schedule_ahead_days
ahead, links http(s) only), answered with a Chinese message naming the field, and audited.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot import appkeys
from broadcasts.apikeys import KeyCheck
from broadcasts.grammar import LEVEL_WORDS, GrammarError, NoticeDraft, parse_time
from broadcasts.models import Content, NoticeKind, NoticeLevel
from broadcasts.progress import snapshot
from broadcasts.schedule import bind_scheduler, bound_scheduling, runtime_from_app
from broadcasts.service import BroadcastService, Reply
from broadcasts.validate import MAX_TEXT, check_draft, fields_of

routes = web.RouteTableDef()
STATUS = {"ok": 200, "refused": 403, "error": 400, "": 200}
KINDS = {k.value: k for k in NoticeKind if k is not NoticeKind.ORIGINAL}
MAX_BODY = 64 * 1024  # bytes of a request body
View = Callable[[web.Request, BroadcastService, str], Awaitable[web.Response]]


def extension(app: web.Application) -> None:
    """Add the API routes, and bind the app's scheduler for 定时 (bot.app extensions=)."""
    app.router.add_routes(routes)
    app.on_startup.append(_bind_scheduler)


async def _bind_scheduler(app: web.Application) -> None:
    if appkeys.scheduler in app:
        bind_scheduler(app[appkeys.scheduler])


def authed(view: View) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Resolve the bearer key to its officer, or answer 401 (audited, with the reason)."""
    async def wrapper(request: web.Request) -> web.Response:
        rt = runtime_from_app(request.app)
        scheme, _, key = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            check = KeyCheck(None, "缺少接口密钥：请求头须为 Authorization: Bearer <密钥>")
        else:
            check = await rt.api_keys.check(key.strip())
        if check.userid is None:
            await rt.audit.record("api", "broadcast.api", "refused", target=check.key_id,
                                  detail=check.reason, source=_source(request))
            return _json({"ok": False, "message": check.reason}, 401)
        return await view(request, BroadcastService(rt, bound_scheduling()), check.userid)
    return wrapper


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(data, status=status,
                             dumps=lambda d: json.dumps(d, ensure_ascii=False))


def _answer(reply: Reply) -> web.Response:
    body = {"ok": reply.ok, "message": reply.text, "notice_id": reply.notice_id, **reply.data}
    return _json(body, STATUS.get(reply.outcome, 400))


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise GrammarError(f"请求体过大：最多 {MAX_BODY // 1024} KB")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise GrammarError(f"请求体过大：最多 {MAX_BODY // 1024} KB")
    try:
        data = json.loads(raw.decode("utf-8"))  # NaN / Infinity parse; validate refuses them
    except (ValueError, UnicodeDecodeError):
        raise GrammarError("请求体必须是 UTF-8 编码的 JSON 对象") from None
    if not isinstance(data, dict):
        raise GrammarError("请求体必须是 JSON 对象（{…}）")
    return data


def _source(request: web.Request) -> str:
    return f"api:{request.remote}"


@routes.post("/api/broadcasts")
@authed
async def create(request: web.Request, svc: BroadcastService, actor: str) -> web.Response:
    try:
        body = await _body(request)
        if "level" not in body:
            return _answer(await svc.issue_text(actor, _plain_text(body),
                                                source=_source(request)))
        draft = draft_from_json(body, svc.rt.clock.now())
        check_draft(draft, svc.rt.clock.now(), svc.rt.config)
    except GrammarError as error:
        return await _refuse(request, svc, actor, "broadcast.issue", str(error))
    return _answer(await svc.issue(actor, draft, source=_source(request)))


async def _refuse(request: web.Request, svc: BroadcastService, actor: str, action: str,
                  message: str) -> web.Response:
    """400 with the Chinese reason, audited; nothing else was touched."""
    await svc.rt.audit.record(actor, action, "refused", detail=message, source=_source(request))
    return _json({"ok": False, "message": message}, 400)


def _plain_text(body: dict[str, Any]) -> str:
    """{"text": "通知 …"}: the chat grammar, as typed."""
    extra = sorted(set(body) - {"text"})
    if extra:
        raise GrammarError(f"不认识的字段 {extra[0]}：整句写法只接受 text；结构化写法须给出 level")
    text = body.get("text", "")
    if not isinstance(text, str) or not text.strip():
        raise GrammarError("text 必须是非空字符串，例如 \"通知 紧急预警 范围：… 内容：…\"")
    if len(text) > MAX_TEXT:
        raise GrammarError(f"text 过长：最多 {MAX_TEXT} 个字符")
    return text


def draft_from_json(body: dict[str, Any], now: float) -> NoticeDraft:
    """A structured request as a NoticeDraft (level by value or Chinese name); every field is
    checked first (broadcasts.validate), GrammarError names the first bad one."""
    f = fields_of(body)
    raw = f["level"]
    level = LEVEL_WORDS.get(raw) or next((lv for lv in NoticeLevel if lv.value == raw), None)
    if level is None:
        raise GrammarError("level 须为 urgent/assist/normal 或 紧急预警/协查通报/普通通知")
    text = f["text"].strip()
    if not text:
        raise GrammarError("缺少 text：请写明通知内容")
    if not f["targets"]:
        raise GrammarError("缺少 targets：请给出发送范围，例如 [\"孝义市/新义街道\"]")
    when = f["schedule_at"]
    schedule_at = parse_time(when, now) if isinstance(when, str) else when
    return NoticeDraft(
        level=level, content=Content(text, f["markdown"], f["image_url"], f["link_url"],
                                     f["link_title"]),
        targets=f["targets"], exclude=f["exclude"], tags=f["tags"], schedule_at=schedule_at)


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
    try:
        body = await _body(request)
        kind, text = _follow_up_fields(body)
    except GrammarError as error:
        return await _refuse(request, svc, actor, "broadcast.follow_up", str(error))
    word = {NoticeKind.UPDATE: "更新", NoticeKind.RETRACT: "撤回",
            NoticeKind.SOLVED: "已破案"}[kind]
    return _answer(await svc.follow_up_text(actor, word, f"{_nid(request)} {text}",
                                            source=_source(request)))


def _follow_up_fields(body: dict[str, Any]) -> tuple[NoticeKind, str]:
    extra = sorted(set(body) - {"kind", "text"})
    if extra:
        raise GrammarError(f"不认识的字段 {extra[0]}：可用字段为 kind、text")
    raw, text = body.get("kind"), body.get("text", "")
    kind = KINDS.get(raw) if isinstance(raw, str) else None
    if kind is None:
        raise GrammarError("kind 须为 update / retract / solved")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise GrammarError(f"text 必须是字符串，最多 {MAX_TEXT} 个字符")
    return kind, text


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
