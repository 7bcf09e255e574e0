"""Sign-in with WeCom (residents_console_votes.md §2) and sign-out.

    GET  /console/login              choose: QR login (desktop) or OAuth (inside WeCom, where
                                     the page goes straight to OAuth)
    GET  /console/login/qr | /oauth  redirect to WeCom with a fresh `state` (5 minutes, one
                                     use, bound to this browser by a short cookie)
    GET  /console/auth/callback      ?code&state: the code goes to auth/getuserinfo (single
                                     use, 5 minutes); a staff member gets a new session
    GET  /console/auth/link/{token}  a one-time sign-in link (printed by the demo)
    POST /console/logout             ends the session (CSRF-checked)

Every sign-in and every refusal is audited (action console.login).
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from bot.wecom.errors import WeComAPIError, WeComError
from console.deps import ConsoleDeps
from console.guard import Viewer, cookie_name, deps_key, signed_in, source_of
from console.html import e, error_page, respond, shell

STATE_COOKIE = "gbc_login"
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
CODE_ERRORS = {40029: "登录码无效或已被使用", 42003: "登录码已过期（5 分钟内有效）",
               41008: "缺少登录码"}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/login", login_page)
    app.router.add_get("/console/login/{how:qr|oauth}", start)
    app.router.add_get("/console/auth/callback", callback)
    app.router.add_get("/console/auth/link/{token}", link)
    app.router.add_post("/console/logout", signed_in(logout))


def _next(raw: str) -> str:
    """Only a console path may be returned to (no open redirect)."""
    return raw if raw.startswith("/console/") and "//" not in raw and "\\" not in raw \
        else "/console/"


async def login_page(request: web.Request) -> web.StreamResponse:
    nxt = _next(request.query.get("next", ""))
    if "wxwork" in request.headers.get("User-Agent", "").lower():
        raise web.HTTPFound("/console/login/oauth?" + urlencode({"next": nxt}))
    q = urlencode({"next": nxt})
    main = (f'<div class="card login"><p>请使用企业微信登录。仅限网格警务人员'
            f"（民警、辅警、网格员、负责人）。</p>"
            f'<p><a class="btn" id="qr-login" href="/console/login/qr?{e(q)}">'
            f'企业微信扫码登录</a></p><p><a class="btn alt" href="/console/login/oauth?{e(q)}">'
            f"在企业微信内打开</a></p></div>")
    return respond(shell("登录", main))


def _base(request: web.Request, deps: ConsoleDeps) -> str:
    public = deps.settings.server.public_url.rstrip("/")
    return public or f"{request.scheme}://{request.host}"


async def start(request: web.Request) -> web.StreamResponse:
    deps = request.app[deps_key]
    state = await deps.sessions.new_login_state(_next(request.query.get("next", "")))
    wecom, console = deps.settings.wecom, deps.settings.console
    back = _base(request, deps) + "/console/auth/callback"
    if request.match_info["how"] == "qr":
        url = console.qr_login_url + "?" + urlencode({
            "login_type": "CorpApp", "appid": wecom.corp_id, "agentid": wecom.agent_id,
            "redirect_uri": back, "state": state, "lang": "zh"})
    else:
        url = console.oauth_url + "?" + urlencode({
            "appid": wecom.corp_id, "redirect_uri": back, "response_type": "code",
            "scope": "snsapi_base", "state": state, "agentid": wecom.agent_id,
        }) + "#wechat_redirect"
    response = web.HTTPFound(url)
    _cookie(request, deps, response, STATE_COOKIE, state, 300)
    raise response


async def callback(request: web.Request) -> web.StreamResponse:
    deps = request.app[deps_key]
    source = source_of(request)
    state, code = request.query.get("state", ""), request.query.get("code", "")
    bound = request.cookies.get(STATE_COOKIE, "")
    nxt = await deps.sessions.take_login_state(state) if state == bound else None
    if nxt is None:
        await deps.audit.record("-", "console.login", "refused", detail="state 无效或已使用",
                                source=source)
        return error_page(403, "登录失败", "登录请求已失效或不是从本浏览器发起，请重新登录。")
    if not code or len(code) > 512:
        await deps.audit.record("-", "console.login", "refused", detail="缺少登录码",
                                source=source)
        return error_page(403, "登录失败", "缺少登录码，请重新登录。")
    try:
        user = await deps.wecom.auth_getuserinfo(code)
    except WeComAPIError as error:
        reason = CODE_ERRORS.get(error.errcode, f"企业微信返回错误 {error.errcode}")
        await deps.audit.record("-", "console.login", "refused", detail=reason, source=source)
        return error_page(403, "登录失败", f"{reason}，请重新登录。")
    except WeComError:
        return error_page(503, "登录失败", "暂时无法连接企业微信，请稍后重试。")
    return await _sign_in(request, deps, user.userid if user.is_member else "", nxt)


async def link(request: web.Request) -> web.StreamResponse:
    deps = request.app[deps_key]
    userid = await deps.sessions.take_link(request.match_info["token"])
    if userid is None:
        await deps.audit.record("-", "console.login", "refused", detail="登录链接无效或已使用",
                                source=source_of(request))
        return error_page(403, "登录失败", "登录链接无效或已使用，请重新获取。")
    return await _sign_in(request, deps, userid, "/console/")


async def _sign_in(request: web.Request, deps: ConsoleDeps, userid: str,
                   nxt: str) -> web.StreamResponse:
    source = source_of(request)
    if not userid:
        await deps.audit.record("-", "console.login", "refused", detail="非企业成员",
                                source=source)
        return error_page(403, "无法登录", "您不是本单位企业微信成员，不能使用警务控制台。")
    person = await deps.registry.person(userid)
    if person is None:
        await deps.audit.record(userid, "console.login", "refused", detail="非网格警务人员",
                                source=source)
        return error_page(403, "无法登录", "抱歉，您不在网格警务人员名单中，不能使用警务控制台。"
                                           "如有疑问请联系所属派出所。")
    sid, _ = await deps.sessions.create(userid)
    await deps.audit.record(userid, "console.login", "ok", detail=person.role.label,
                            source=source)
    response = web.HTTPFound(nxt)
    _cookie(request, deps, response, cookie_name(deps), sid, None)
    response.del_cookie(STATE_COOKIE, path="/console/")
    raise response


async def logout(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    deps = viewer.deps
    await deps.sessions.end(viewer.session)
    await deps.audit.record(viewer.userid, "console.logout", "ok", source=source_of(request))
    response = web.HTTPFound("/console/login")
    response.del_cookie(cookie_name(deps), path="/")
    raise response


def _cookie(request: web.Request, deps: ConsoleDeps, response: web.StreamResponse, name: str,
            value: str, max_age: int | None) -> None:
    """HttpOnly, SameSite=Lax, Secure. Secure may be off (console.secure_cookies = false)
    only while the console is reached on a loopback address over http (tests, demo)."""
    secure = deps.settings.console.secure_cookies
    if not secure and not request.host.startswith(LOOPBACK):
        raise web.HTTPForbidden(text="console.secure_cookies = false 仅允许在 127.0.0.1 上使用")
    path = "/" if name == cookie_name(deps) else "/console/"
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True,
                        secure=secure, samesite="Lax")
