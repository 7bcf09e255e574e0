"""Member login (residents_console_votes.md §2): the OAuth page inside the WeCom client, the
QR screen of a desktop browser, and `auth/getuserinfo` that exchanges the code.

    GET  /connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state&agentid
         inside the WeCom client: silent login of the member using the client. The simulator
         knows that member from the `wwsim_member` cookie that /sim/client sets ("open this
         URL in member X's WeCom app"); without it, a page asks who is holding the phone.
    GET  /sim/client?member=…&url=…      sets that cookie and opens `url`
    GET  /wwlogin/sso/login?login_type=CorpApp&appid&agentid&redirect_uri&state
         the QR screen; a simulated member "scans" it (POST /wwlogin/sso/scan) and the
         browser is redirected to redirect_uri?code=…&state=…
    GET  /cgi-bin/auth/getuserinfo?access_token&code
         {userid} for a member, {openid} for someone outside the corp; the code is single
         use and lives 5 minutes: 40029 invalid or already used, 42003 expired, 41008 missing.

A redirect_uri whose host is not a trusted domain (`LoginDesk.trusted_hosts`; empty = any
loopback host) is refused with 50001, as WeCom does.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from bot.wecom.simulator import server
from bot.wecom.simulator.errors import SimError, ok
from bot.wecom.simulator.params import Body
from bot.wecom.simulator.state import SimState

CODE_TTL = 300.0  # simulated seconds
INVALID_CODE, CODE_EXPIRED, MISSING_CODE, UNTRUSTED_REDIRECT = 40029, 42003, 41008, 50001
STATE_MAX = 128
MEMBER_COOKIE = "wwsim_member"
OUTSIDER = "__outsider__"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(slots=True)
class Grant:
    who: str  # userid, or openid for an outsider
    is_member: bool
    issued_at: float


@dataclass(slots=True)
class LoginDesk:
    """Codes issued by the OAuth and QR pages, waiting for auth/getuserinfo."""

    state: SimState
    trusted_hosts: set[str] = field(default_factory=set)
    codes: dict[str, Grant] = field(default_factory=dict)
    exchanged: int = 0

    def issue_code(self, userid: str) -> str:
        """A code for `userid` (a member of the directory) or, for OUTSIDER, a WeChat user
        outside the corp."""
        self._expire()
        member = userid != OUTSIDER
        who = userid if member else "o" + secrets.token_hex(12)
        code = secrets.token_urlsafe(48)
        self.codes[code] = Grant(who, member, self.state.now())
        return code

    def exchange(self, code: str) -> Grant:
        if not code:
            raise SimError(MISSING_CODE, "code missing")
        grant = self.codes.pop(code, None)  # single use: a consumed code is deleted
        if grant is None:
            raise SimError(INVALID_CODE, "invalid code")
        if self.state.now() - grant.issued_at > CODE_TTL:
            raise SimError(CODE_EXPIRED, "code expired")
        self.exchanged += 1
        return grant

    def _expire(self) -> None:
        now = self.state.now()
        for code in [c for c, g in self.codes.items() if now - g.issued_at > 2 * CODE_TTL]:
            del self.codes[code]

    def check_redirect(self, redirect_uri: str) -> str | None:
        """The problem with a redirect target, or None."""
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "redirect_uri 无效"
        allowed = self.trusted_hosts or LOOPBACK
        host = parts.netloc if self.trusted_hosts else parts.hostname
        if host not in allowed:
            return f"redirect_url未登记可信域名 ({UNTRUSTED_REDIRECT})"
        return None


def add_routes(app: web.Application, desk: LoginDesk) -> None:
    api = server.Api("auth/getuserinfo", "GET", partial(getuserinfo, desk))
    app.router.add_get("/cgi-bin/auth/getuserinfo", partial(server.serve, desk.state, api))
    app.router.add_get("/connect/oauth2/authorize", partial(oauth_page, desk))
    app.router.add_get("/sim/client", client_page)
    app.router.add_get("/wwlogin/sso/login", partial(qr_page, desk))
    app.router.add_post("/wwlogin/sso/scan", partial(scan, desk))


def getuserinfo(desk: LoginDesk, state: SimState, body: Body,
                query: Mapping[str, str]) -> dict[str, Any]:
    grant = desk.exchange(query.get("code", ""))
    if grant.is_member:
        return ok(userid=grant.who)
    return ok(openid=grant.who)


def _problem(desk: LoginDesk, query: Mapping[str, str], *, qr: bool) -> str | None:
    if query.get("appid") != desk.state.config.corp_id:
        return "appid 参数错误"
    if qr and query.get("login_type") != "CorpApp":
        return "login_type 须为 CorpApp"
    if qr and str(query.get("agentid")) != str(desk.state.config.agent_id):
        return "agentid 参数错误"
    state = query.get("state", "")
    if len(state) > STATE_MAX or not state.isascii() or (state and not state.isalnum()):
        return "state 须为不超过 128 字节的字母数字"
    return desk.check_redirect(query.get("redirect_uri", ""))


def _back(redirect_uri: str, code: str, state: str) -> web.HTTPFound:
    sep = "&" if "?" in redirect_uri else "?"
    return web.HTTPFound(redirect_uri + sep + urlencode({"code": code, "state": state}))


async def oauth_page(desk: LoginDesk, request: web.Request) -> web.Response:
    query = request.query
    problem = _problem(desk, query, qr=False)
    if problem:
        return _page("授权失败", f"<p>{html.escape(problem)}</p>", 400)
    member = request.cookies.get(MEMBER_COOKIE, "")
    if member and member not in desk.state.directory.users:
        return _page("无权限", "<p>您不在该应用的可见范围内，请联系管理员。</p>", 403)
    if not member:
        picker = _picker(desk, request.path_qs, "/sim/client", "在此成员的企业微信中打开")
        return _page("企业微信", picker)
    raise _back(query["redirect_uri"], desk.issue_code(member), query.get("state", ""))


async def client_page(request: web.Request) -> web.Response:
    member, url = request.query.get("member", ""), request.query.get("url", "/")
    parts = urlsplit(url)
    local = (not parts.scheme and not parts.netloc and url.startswith("/")) or (
        parts.scheme in ("http", "https") and parts.hostname in LOOPBACK)
    if not local or url.startswith("//"):
        return _page("错误", "<p>url 无效：只能打开本机地址</p>", 400)
    response = web.HTTPFound(url)
    response.set_cookie(MEMBER_COOKIE, member, httponly=True, samesite="Lax")
    raise response


async def qr_page(desk: LoginDesk, request: web.Request) -> web.Response:
    problem = _problem(desk, request.query, qr=True)
    if problem:
        return _page("登录失败", f"<p>{html.escape(problem)}</p>", 400)
    hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in request.query.items())
    options = "".join(f'<option value="{html.escape(u)}">{html.escape(n)}（{html.escape(u)}）'
                      f"</option>" for u, n in sorted(desk.state.directory.users.items()))
    body = (f"<p>请使用企业微信扫描二维码登录</p>{_QR_SVG}"
            f'<form method="post" action="/wwlogin/sso/scan" id="scan">{hidden}'
            f'<label>模拟扫码成员 <select name="member" id="member">{options}'
            f'<option value="{OUTSIDER}">非企业成员（个人微信）</option></select></label>'
            f'<button type="submit" id="scan-button">模拟扫码并确认登录</button></form>')
    return _page("企业微信扫码登录", body)


async def scan(desk: LoginDesk, request: web.Request) -> web.Response:
    form = await request.post()
    query = {k: str(v) for k, v in form.items()}
    problem = _problem(desk, query, qr=True)
    if problem:
        return _page("登录失败", f"<p>{html.escape(problem)}</p>", 400)
    member = query.get("member", "")
    if member != OUTSIDER and member not in desk.state.directory.users:
        return _page("无权限", "<p>您不在该应用的可见范围内，请联系管理员。</p>", 403)
    raise _back(query["redirect_uri"], desk.issue_code(member), query.get("state", ""))


def _picker(desk: LoginDesk, back: str, action: str, label: str) -> str:
    options = "".join(f'<option value="{html.escape(u)}">{html.escape(n)}</option>'
                      for u, n in sorted(desk.state.directory.users.items()))
    return (f'<form method="get" action="{action}"><input type="hidden" name="url" '
            f'value="{html.escape(back)}"><select name="member">{options}</select>'
            f"<button>{label}</button></form>")


def _page(title: str, body: str, status: int = 200) -> web.Response:
    text = (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport"'
            f' content="width=device-width,initial-scale=1"><title>{html.escape(title)}</title>'
            f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return web.Response(text=text, status=status, content_type="text/html")


_QR_SVG = ('<svg width="160" height="160" viewBox="0 0 8 8" role="img" aria-label="二维码">'
           + "".join(f'<rect x="{x}" y="{y}" width="1" height="1"/>'
                     for x in range(8) for y in range(8) if (x * 3 + y * 5 + x * y) % 3 == 0)
           + "</svg>")
