"""The residents' self-declaration form (自主申报), served by the bot's aiohttp app.

    GET  /form/<token>   the form (a campaign link names campaign, node and expiry)
    POST /form/<token>   validated with the same validator as chat; errors shown next to the
                         field; a stored declaration is 待核查 for the grid worker

Wiring (bot/app.py): `create_app(..., extensions=[collect.web.setup])` adds the routes and
registers the campaign-reminder job once the scheduler has started.

Safety: the link token is HMAC-signed and expires with the campaign; the POST must carry a
CSRF value bound to that token (one-time nonce: a double-submitted form stores once); bodies
over MAX_BODY are refused unread; each field is capped; each link accepts at most
RATE_PER_HOUR submissions an hour; pages forbid framing and external loads, and send
Referer only to themselves.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping

from aiohttp import web

from bot import appkeys
from collect import tokens
from collect.access import Actor
from collect.campaign import Campaign, Campaigns
from collect.deps import CollectDeps
from collect.formdraft import Draft, drop_draft, load_draft, save_draft
from collect.formpage import KIND_INPUTS, FormView, field_names, render_form, render_message
from collect.models import ChangeKind, RecordKind
from collect.replies import when
from collect.results import Outcome, Result, Submission
from collect.service import CollectService
from collect.validate import Issue, Severity
from registry.models import Level, Node

log = logging.getLogger(__name__)
MAX_BODY = 16 * 1024
MAX_FIELD = 200
RATE_PER_HOUR = 600
CONFIRM_NOTE = "请核实下方标出的提示；信息与证件一致时，勾选页面底部的确认框后再次提交"


def setup(app: web.Application) -> None:
    """Extension for bot.app.create_app: the form routes and the reminder job."""
    setup_routes(app)
    app.on_startup.append(_schedule_reminders)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/form/{token}", show_form)
    app.router.add_post("/form/{token}", submit_form)


async def _schedule_reminders(app: web.Application) -> None:
    # on_startup handlers run after the cleanup contexts started, so the scheduler exists
    from collect.jobs import schedule_reminders

    if appkeys.scheduler in app:
        schedule_reminders(app[appkeys.scheduler], app[appkeys.settings])


def _deps(app: web.Application) -> CollectDeps:
    return CollectDeps.build(app[appkeys.redis], app[appkeys.keys], app[appkeys.clock],
                             app[appkeys.settings], app[appkeys.registry], app[appkeys.audit])


def _page(body: str, nonce: str, status: int = 200) -> web.Response:
    csp = (f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
           "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
    headers = {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
               "X-Frame-Options": "DENY"}
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8",
                        headers=headers)


def _message(title: str, text: str, status: int,
             details: tuple[tuple[str, str], ...] = ()) -> web.Response:
    nonce = secrets.token_urlsafe(12)
    return _page(render_message(title, text, nonce, details), nonce, status)


async def _open(request: web.Request) -> tuple[CollectDeps, str, Campaign, Node] | web.Response:
    """Check the link; the deps, token, campaign and node it grants, or an error page."""
    deps = _deps(request.app)
    token = request.match_info["token"]
    try:
        grant = tokens.verify(deps.blind.subkey("form-token"), token, deps.now())
    except tokens.TokenError as error:
        return _message("无法打开", str(error), 403)
    campaign = await Campaigns(deps).get(grant.campaign)
    node = await deps.registry.node(grant.node)
    if campaign is None or node is None:
        return _message("无法打开", "本次采集已结束或链接有误，请联系网格员", 404)
    return deps, token, campaign, node


async def _buildings(deps: CollectDeps, node: Node) -> list[Node]:
    return [n for n in await deps.registry.children(node.code) if n.level is Level.BUILDING]


async def _form(deps: CollectDeps, token: str, campaign: Campaign, node: Node,
                kind: RecordKind, values: Mapping[str, str], issues: tuple[Issue, ...] = (),
                status: int = 200, note: str = "", draft: Draft | None = None) -> web.Response:
    nonce = secrets.token_urlsafe(12)
    view = FormView(kind, node.name, when(campaign.deadline),
                    tokens.csrf(deps.blind.subkey("form-token"), token, deps.now()), nonce,
                    values, issues, await _buildings(deps, node), note,
                    draft.id if draft else "", draft.masked() if draft else {})
    return _page(render_form(view), nonce, status)


def _kind(text: str) -> RecordKind:
    kind = RecordKind.from_label(text) if text else None
    return kind if kind in KIND_INPUTS else RecordKind.PERSON


async def show_form(request: web.Request) -> web.Response:
    opened = await _open(request)
    if isinstance(opened, web.Response):
        return opened
    return await _form(*opened, _kind(request.query.get("t", "")), values={})


async def submit_form(request: web.Request) -> web.Response:
    if request.content_length is None or request.content_length > MAX_BODY:
        return _message("提交失败", "提交的内容过大，请检查后重新填写", 413)
    opened = await _open(request)
    if isinstance(opened, web.Response):
        return opened
    deps, token, campaign, node = opened
    posted = await request.post()
    kind = _kind(str(posted.get("kind", "")))
    form = {k: str(posted.get(k, ""))[:MAX_FIELD] for k in (*field_names(kind), "csrf",
                                                           "confirm", "draft")}
    form.update(await load_draft(deps, token, form["draft"], form))
    key = deps.blind.subkey("form-token")
    nonce = tokens.check_csrf(key, token, form["csrf"], deps.now())
    if nonce is None or not _same_origin(request):
        return await _form(deps, token, campaign, node, kind, form, status=403,
                           note="页面已过期或来源不明，请核对后重新提交")
    if not await _within_rate(deps, token):
        return _message("提交过于频繁", "该链接提交次数过多，请稍后再试或联系网格员", 429)
    if not await deps.redis.set(deps.keys.form_nonce(nonce), "1", nx=True,
                                px=deps.clock.real_ms(tokens.CSRF_MAX_AGE)):
        return _message("已提交", "该表单已提交过，请勿重复提交", 409)
    result = await CollectService(deps).submit(_submission(campaign, node, kind, form))
    if result.outcome is Outcome.STORED:
        await drop_draft(deps, form["draft"])
        return _stored(result)
    await deps.redis.delete(deps.keys.form_nonce(nonce))  # let the fixed form be sent again
    note = CONFIRM_NOTE if result.outcome is Outcome.CONFIRM else ""
    issues = _shown_issues(result)
    draft = await save_draft(deps, token, kind, form, issues)
    return await _form(deps, token, campaign, node, kind, form, issues, status=422, note=note,
                       draft=draft)


def _same_origin(request: web.Request) -> bool:
    """A browser posting from our page names our origin (Referrer-Policy same-origin keeps it
    doing so); another site, or a sandboxed frame ("null"), is refused. No header at all is a
    non-browser client, which the CSRF value alone has to satisfy."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return origin.split("://", 1)[-1] == request.host


async def _within_rate(deps: CollectDeps, token: str) -> bool:
    key = deps.keys.form_rate(tokens.digest(token))
    count = int(await deps.redis.incr(key))
    if count == 1:
        await deps.redis.pexpire(key, deps.clock.real_ms(3600))
    return count <= RATE_PER_HOUR


def _submission(campaign: Campaign, node: Node, kind: RecordKind,
                form: Mapping[str, str]) -> Submission:
    marks = {"door": "号", "building": "栋", "unit": "单元", "room": "室"}
    parts = [form["street"]] + [form[p] + m for p, m in marks.items() if form[p].strip()]
    values = {i.name: form[i.name] for i in KIND_INPUTS[kind]}
    values["node"] = form["node"]
    values["address"] = "".join(p.strip() for p in parts if p.strip())
    confirmed = form["confirm"] == "1"  # the one checkbox covers warnings and a checksum
    return Submission(kind, values, Actor.resident(campaign.id, node.code),
                      f"form:{campaign.id}", ChangeKind.DECLARE, confirmed=confirmed,
                      override=confirmed)


def _shown_issues(result: Result) -> tuple[Issue, ...]:
    if result.outcome is Outcome.FORBIDDEN:
        return (Issue("node", Severity.ERROR, result.message),)
    if result.outcome is Outcome.BUSY:
        return (Issue("address", Severity.ERROR, "系统繁忙，请稍后再提交"),)
    return result.issues


SHOWN = {RecordKind.PERSON: (("姓名", "name"), ("公民身份号码", "id_number"),
                             ("手机号码", "phone")),
         RecordKind.UNIT: (("单位名称", "unit_name"), ("统一社会信用代码", "uscc"),
                           ("法定代表人", "legal_rep"))}


def _stored(result: Result) -> web.Response:
    record = result.record
    assert record is not None
    shown = tuple((label, record.display(name)) for label, name in SHOWN[record.kind])
    details = (("登记编号", record.id), *shown, ("地址", record.display("address_full")),
               ("状态", record.state.label))
    text = "您的信息已提交，网格员核查后生效。如需修改，可重新填写提交或联系网格员。"
    return _message("提交成功", text, 200, details)
