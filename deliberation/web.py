"""Pages of 说事议事, served by the bot's aiohttp app (Chinese, phone-sized, no outside assets).

    GET/POST /vote/<matter>/<token>          one voter's ballot (signed single-use link)
    GET      /vote/<matter>/sheet/<token>    a grid worker's list of links for their grid
    GET      /matter/<matter>/record[.json]  after closing: entries, chain head, counts
    GET      /receipt?r=<receipt>            check a receipt against the published record
    GET      /draw/<id>[.json]               a draw's published record
    GET      /draw/<id>/verify               the draw recomputed from its published record

Wiring: `create_app(..., extensions=[deliberation.web.setup])` (routes + the due-time job).
Safety: links checked in constant time; the POST carries a CSRF value bound to the link;
bodies over MAX_BODY refused unread; pages forbid framing and outside loads.
"""

from __future__ import annotations

import html
import json
import secrets
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from bot import appkeys
from deliberation import announce, links, lottery, texts
from deliberation.deps import DelibDeps
from deliberation.draws import DrawService
from deliberation.models import Matter, Status
from deliberation.service import MatterService, Refused

MAX_BODY = 2048
_CSS = ("body{font:16px/1.6 sans-serif;margin:0;padding:16px;max-width:640px;color:#222}"
        "h1{font-size:20px}fieldset{border:1px solid #ccc;border-radius:8px}"
        "label{display:block;padding:10px 4px;font-size:18px}"
        "button{width:100%;padding:14px;font-size:18px;border:0;border-radius:8px;"
        "background:#07c160;color:#fff}.note{color:#666;font-size:14px}"
        "code{word-break:break-all;font-size:13px}li{margin:6px 0}")


def setup(app: web.Application) -> None:
    setup_routes(app)
    app.on_startup.append(_schedule)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/vote/{matter}/sheet/{token}", show_sheet)
    app.router.add_get("/vote/{matter}/{token}", show_ballot)
    app.router.add_post("/vote/{matter}/{token}", cast_ballot)
    app.router.add_get("/matter/{matter}/record.json", record_json)
    app.router.add_get("/matter/{matter}/record", record_page)
    app.router.add_get("/receipt", receipt_page)
    app.router.add_get("/draw/{draw}.json", draw_json)
    app.router.add_get("/draw/{draw}/verify", draw_verify)
    app.router.add_get("/draw/{draw}", draw_page)


async def _schedule(app: web.Application) -> None:
    from deliberation.jobs import schedule_tick

    if appkeys.scheduler in app:
        schedule_tick(app[appkeys.scheduler])


def _deps(request: web.Request) -> DelibDeps:
    app = request.app
    return DelibDeps.build(app[appkeys.redis], app[appkeys.keys], app[appkeys.clock],
                           app[appkeys.settings], app[appkeys.registry], app[appkeys.audit],
                           app.get(appkeys.wecom))


def _page(title: str, body: str, status: int = 200) -> web.Response:
    nonce = secrets.token_urlsafe(12)
    doc = (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
           f'<meta name="viewport" content="width=device-width,initial-scale=1">'
           f"<title>{html.escape(title)}</title><style nonce=\"{nonce}\">{_CSS}</style>"
           f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>")
    csp = (f"default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self'; "
           "base-uri 'none'; frame-ancestors 'none'")
    return web.Response(text=doc, status=status, content_type="text/html", charset="utf-8",
                        headers={"Content-Security-Policy": csp, "Cache-Control": "no-store",
                                 "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                                 "Referrer-Policy": "no-referrer"})


def _message(title: str, text: str, status: int = 200, extra: str = "") -> web.Response:
    return _page(title, f"<p>{html.escape(text)}</p>{extra}", status)


def _matter_head(matter: Matter) -> str:
    background = f"<p>{html.escape(matter.background)}</p>" if matter.background else ""
    return (f"<p><b>{html.escape(matter.village_name)}</b> · {html.escape(matter.id)}</p>"
            f"{background}<p class=note>{html.escape(texts.rule_line(matter))}。"
            f"{html.escape(texts.when(matter.closes_at))}截止。投票不记名。</p>")


async def show_ballot(request: web.Request) -> web.Response:
    matter_id, token = request.match_info["matter"], request.match_info["token"]
    service = MatterService(_deps(request))
    try:
        matter, voted = await service.ballot_view(matter_id, token, source=f"web:{matter_id}")
    except (links.LinkError, Refused) as error:
        return _message("无法投票", str(error), 403)
    refusal = ""
    if matter.status is Status.CANCELLED:
        refusal, status = "该议题已撤销，不再投票。", 410
    elif matter.status is not Status.OPEN or service.deps.now() >= matter.closes_at:
        refusal, status = texts.VOTE_ANSWERS["closed"], 410
    elif voted and not matter.allow_change:
        refusal, status = texts.VOTE_ANSWERS["already"], 409
    if refusal:
        await service.refused_vote(matter.id, refusal, f"web:{matter.id}")
        return _message(matter.title, refusal, status)
    options = "".join(f'<label><input type="radio" name="option" value="{i}" required> '
                      f"{html.escape(o)}</label>" for i, o in enumerate(matter.options))
    again = "<p class=note>您已投过票，再次提交将以新的选择为准。</p>" if voted else ""
    csrf = links.csrf(service.deps.link_key, matter.id, token)
    form = (f'<form method="post"><fieldset>{options}</fieldset>'
            f'<input type="hidden" name="csrf" value="{csrf}">{again}'
            f"<p><button type=submit>提交我的选择</button></p></form>")
    return _page(matter.title, _matter_head(matter) + form)


async def cast_ballot(request: web.Request) -> web.Response:
    matter_id, token = request.match_info["matter"], request.match_info["token"]
    if request.content_length is None or request.content_length > MAX_BODY:
        return _message("无法投票", "提交内容过大或缺少长度", 413)
    posted = await request.post()
    deps = _deps(request)
    if not links.check_csrf(deps.link_key, matter_id, token, str(posted.get("csrf", ""))):
        message = "页面已失效：请重新打开表决链接后再提交"
        await MatterService(deps).refused_vote(matter_id, message, f"web:{matter_id[:12]}")
        return _message("无法投票", message, 403)
    raw = str(posted.get("option", ""))
    option = int(raw) if raw.isdigit() and len(raw) <= 2 else -1
    result = await MatterService(deps).vote(matter_id, token, option,
                                            source=f"web:{matter_id}")
    if not result.ok:
        return _message("未能投票", result.message, 409)
    shown = html.escape(result.receipt)
    receipt = (f"<p>回执（请截图或抄下）：</p><p><code>{shown}</code></p>"
               f'<p class=note>结果公布后，可在 <a href="/receipt?r={shown}">回执核对页</a>'
               " 核对。</p>")
    return _message("已投票", result.message, 200, receipt)


async def show_sheet(request: web.Request) -> web.Response:
    matter_id, token = request.match_info["matter"], request.match_info["token"]
    deps = _deps(request)
    matter = await deps.matters.get(matter_id)
    try:
        if matter is None:
            raise links.LinkError("链接无效")
        grid, _ = links.check_sheet(deps.link_key, matter.id, token)
    except links.LinkError as error:
        return _message("无法打开", str(error), 403)
    voters = [v for v in await deps.matters.roll(matter.id) if v.grid == grid]
    rows = "".join(f"<li>{html.escape(v.label)}<br><code>"
                   f"{html.escape(announce.vote_url(deps, matter, v.vid))}</code></li>"
                   for v in voters)
    unit = matter.electorate.unit
    intro = (f"<p>本网格{len(voters)}{unit}。每个链接只属于一{unit}，"
             "请分别转给本人（不要发到群里），一个链接只能投一次。</p>")
    return _page(f"表决链接：{matter.title}", intro + f"<ol>{rows}</ol>")


async def _published(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        return await MatterService(_deps(request)).published(request.match_info["matter"])
    except Refused as error:
        return _message("尚未公布", str(error), 404)


async def record_json(request: web.Request) -> web.Response:
    record = await _published(request)
    if isinstance(record, web.Response):
        return record
    return web.json_response(record, dumps=lambda d: json.dumps(d, ensure_ascii=False))


async def record_page(request: web.Request) -> web.Response:
    record = await _published(request)
    if isinstance(record, web.Response):
        return record
    counts = "".join(f"<li>{html.escape(o)}：{c}</li>"
                     for o, c in zip(record["options"], record["result"]["counts"], strict=True))
    entries = "".join(f"<li><code>{html.escape(e)}</code></li>" for e in record["entries"])
    body = (f"<ul>{counts}</ul><p>链头：<code>{record['head']}</code></p>"
            f"<p>名单哈希：<code>{record['roll_hash']}</code></p>"
            f'<p><a href="{request.path}.json">下载完整记录（JSON）</a></p><ol>{entries}</ol>')
    return _page(f"选票记录：{record['title']}", body)


async def receipt_page(request: web.Request) -> web.Response:
    text = request.query.get("r", "")[:120]
    form = ('<form method="get"><p><input name="r" size="40" placeholder="议题编号-票号-校验码">'
            "</p><p><button type=submit>核对</button></p></form>")
    if not text:
        return _page("核对回执", form)
    found = await MatterService(_deps(request)).check_receipt(text)
    return _message("核对回执", found.message, 200 if found.ok else 404, form)


async def _draw(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        return await DrawService(_deps(request)).published(request.match_info["draw"])
    except Refused as error:
        return _message("没有这个抓阄", str(error), 404)


async def draw_json(request: web.Request) -> web.Response:
    record = await _draw(request)
    if isinstance(record, web.Response):
        return record
    return web.json_response(record, dumps=lambda d: json.dumps(d, ensure_ascii=False))


def _pairs(rows: Sequence[Sequence[str]]) -> str:
    return "".join(f"<li>{html.escape(p)} → {html.escape(i)}</li>" for p, i in rows)


async def draw_page(request: web.Request) -> web.Response:
    record = await _draw(request)
    if isinstance(record, web.Response):
        return record
    people = "".join(f"<li>{html.escape(p)}</li>" for p in record["participants"])
    result = (f"<p>种子：<code>{record['seed']}</code></p><ol>{_pairs(record['allocation'])}</ol>"
              f'<p><a href="/draw/{record["id"]}/verify">重新计算核对</a></p>'
              if record.get("status") == "drawn" else "<p>尚未开抽。</p>")
    body = (f"<p>名单哈希：<code>{record['list_hash']}</code><br>"
            f"种子哈希：<code>{record['seed_commitment']}</code></p>{result}"
            f"<p>参加户（{len(record['participants'])}）：</p><ol>{people}</ol>"
            f'<p><a href="/draw/{record["id"]}.json">下载公示记录（JSON）</a></p>')
    return _page(f"抓阄：{record['title']}", body)


async def draw_verify(request: web.Request) -> web.Response:
    record = await _draw(request)
    if isinstance(record, web.Response):
        return record
    if record.get("status") != "drawn":
        return _message("尚未开抽", "开抽后才能核对", 409)
    check = lottery.verify(record)
    verdict = "核对一致：按公布的名单和种子重新计算，分配结果完全相同。" if check.ok else \
        "核对不一致：" + "；".join(check.problems)
    return _page(f"核对抓阄：{record['title']}",
                 f"<p><b>{html.escape(verdict)}</b></p><ol>"
                 f"{_pairs([list(p) for p in check.outcome.allocation])}</ol>",
                 200 if check.ok else 409)
