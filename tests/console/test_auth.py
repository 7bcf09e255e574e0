"""Sign-in with WeCom and the session rules, over real HTTP against the simulator's login
pages and auth/getuserinfo."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

import aiohttp

from bot.wecom.errors import WeComAPIError
from bot.wecom.simulator.auth import CODE_TTL, OUTSIDER
from console.guard import COOKIE_PLAIN, COOKIE_SECURE
from console.keys import ConsoleKeys
from console.sessions import SessionStore
from tests.console.conftest import COUNTY_OFFICER, OTHER_OFFICER, Console, csrf_of, query_of

Make = Callable[..., Awaitable[Console]]
HTML = {"Accept": "text/html"}


async def _state(console: Console, session: aiohttp.ClientSession) -> str:
    async with session.get(console.base + "/console/login/qr", allow_redirects=False) as r:
        assert r.status == 302
        return query_of(r.headers["Location"])["state"]


async def _callback(console: Console, session: aiohttp.ClientSession, code: str,
                    state: str | None = None) -> tuple[int, str]:
    state = state if state is not None else await _state(console, session)
    url = console.base + "/console/auth/callback?" + urlencode({"code": code, "state": state})
    async with session.get(url, headers=HTML) as r:
        return r.status, await r.text()


async def _refusals(console: Console, action: str = "console.login") -> list[str]:
    entries = await console.env.rt.audit.entries(action=action)
    return [e.detail for e in entries if e.outcome == "refused"]


async def test_qr_login_gives_a_session_with_safe_cookie(make_console: Make) -> None:
    console = await make_console()
    async with await console.client() as s:
        async with s.get(console.base + "/console/login/qr", allow_redirects=False) as r:
            location = r.headers["Location"]
            assert location.startswith(console.sim_base + "/wwlogin/sso/login?")
            q = query_of(location)
            assert q["login_type"] == "CorpApp" and q["agentid"] == "1000002"
            assert q["redirect_uri"] == console.base + "/console/auth/callback"
            assert len(q["state"]) <= 128 and q["state"].isalnum()
        csrf = await console.sign_in(s, COUNTY_OFFICER)
        assert csrf
        async with s.get(console.base + "/console/", headers=HTML) as r:
            page = await r.text()
            assert r.status == 200 and "李警官" in page and "交口县" in page
            assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    ok = [e for e in await console.env.rt.audit.entries(action="console.login")
          if e.outcome == "ok"]
    assert [e.actor for e in ok] == [COUNTY_OFFICER]


async def test_cookie_flags(make_console: Make) -> None:
    console = await make_console()
    code = await console.code_for(COUNTY_OFFICER)
    async with await console.client() as s:
        state = await _state(console, s)
        url = console.base + "/console/auth/callback?" + urlencode({"code": code, "state": state})
        async with s.get(url, allow_redirects=False) as r:
            cookie = next(c for c in r.headers.getall("Set-Cookie") if c.startswith(COOKIE_PLAIN))
            assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    # production: the __Host- cookie, Secure
    secure = await make_console(secure=True)
    code = await secure.code_for(COUNTY_OFFICER)
    async with await secure.client() as s:
        async with s.get(secure.base + "/console/login/qr", allow_redirects=False) as r:
            state = query_of(r.headers["Location"])["state"]
            bound = next(c for c in r.headers.getall("Set-Cookie") if c.startswith("gbc_login"))
            assert "Secure" in bound and "HttpOnly" in bound
        s.cookie_jar.update_cookies({"gbc_login": state})  # as a browser over https would
        url = secure.base + "/console/auth/callback?" + urlencode({"code": code, "state": state})
        async with s.get(url, allow_redirects=False) as r:
            assert r.status == 302, await r.text()
            cookie = next(c for c in r.headers.getall("Set-Cookie") if "gbc=" in c)
            assert cookie.startswith(COOKIE_SECURE + "=")
            assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # Secure off is only for loopback: another Host header is refused outright
    async with await console.client() as s, s.get(
            console.base + "/console/login/qr", headers={"Host": "console.example.cn"},
            allow_redirects=False) as r:
        assert r.status == 403


async def test_oauth_inside_the_wecom_client(make_console: Make) -> None:
    console = await make_console()
    async with await console.client() as s:
        ua = {"User-Agent": "Mozilla/5.0 wxwork/4.1.0 MicroMessenger/7.0.1", **HTML}
        url = console.sim_base + "/sim/client?" + urlencode(
            {"member": COUNTY_OFFICER, "url": console.base + "/console/login"})
        async with s.get(url, headers=ua) as r:
            page = await r.text()
            assert r.status == 200 and "概览" in page and "李警官" in page, page[:300]
            assert str(r.url) == console.base + "/console/"


async def test_no_page_or_api_without_a_session(make_console: Make) -> None:
    console = await make_console()
    async with await console.client() as s:
        for path in ("/console/", "/console/notices", "/console/notices/1",
                     "/console/notices/1/live", "/console/coverage", "/console/collect",
                     "/console/cases", "/console/cases/E1", "/console/assess",
                     "/console/assess.xlsx",
                     "/console/audit", "/console/node/141130"):
            async with s.get(console.base + path, allow_redirects=False) as r:
                assert r.status == 401, path
            async with s.get(console.base + path, headers=HTML, allow_redirects=False) as r:
                assert r.status == 302 and r.headers["Location"].startswith("/console/login")
        for path in ("/console/notices", "/console/notices/1/confirm", "/console/logout"):
            async with s.post(console.base + path, data={"_csrf": "x"}) as r:
                assert r.status == 401, path
        s.cookie_jar.update_cookies({COOKIE_PLAIN: "forged-session-id"})
        async with s.get(console.base + "/console/notices") as r:
            assert r.status == 401


async def test_forged_expired_and_reused_codes_are_refused(make_console: Make) -> None:
    console = await make_console()
    async with await console.client() as s:
        status, page = await _callback(console, s, "forged-code-0000")
        assert status == 403 and "登录码无效或已被使用" in page
        code = await console.code_for(COUNTY_OFFICER)
        assert (await _callback(console, s, code))[0] == 200
    async with await console.client() as s:
        status, page = await _callback(console, s, code)  # the same code again
        assert status == 403 and "登录码无效或已被使用" in page
        old = await console.code_for(COUNTY_OFFICER)
        console.env.sim.login.codes[old].issued_at -= CODE_TTL + 1  # five minutes pass
        status, page = await _callback(console, s, old)
        assert status == 403 and "已过期" in page
        async with s.get(console.base + "/console/notices") as r:
            assert r.status == 401
    details = await _refusals(console)
    assert details.count("登录码无效或已被使用") == 2 and "登录码已过期（5 分钟内有效）" in details


async def test_state_is_single_use_and_bound_to_the_browser(make_console: Make) -> None:
    console = await make_console()
    async with await console.client() as a, await console.client() as b:
        state = await _state(console, a)
        code = await console.code_for(COUNTY_OFFICER)
        status, _ = await _callback(console, b, code, state)  # login CSRF: b never asked
        assert status == 403
        status, _ = await _callback(console, a, await console.code_for(COUNTY_OFFICER), state)
        assert status == 200
        status, _ = await _callback(console, a, await console.code_for(COUNTY_OFFICER), state)
        assert status == 403  # spent


async def test_outsiders_and_non_staff_get_a_clear_refusal(make_console: Make) -> None:
    console = await make_console()
    console.env.sim.load_directory({"zhangsan": "张三"})  # a member, but not police staff
    async with await console.client() as s:
        status, page = await _callback(console, s, await console.code_for(OUTSIDER))
        assert status == 403 and "不是本单位企业微信成员" in page
        status, page = await _callback(console, s, await console.code_for("zhangsan"))
        assert status == 403 and "不在网格警务人员名单中" in page
        async with s.get(console.base + "/console/") as r:
            assert r.status == 401
    assert {"非企业成员", "非网格警务人员"} <= set(await _refusals(console))


async def test_csrf_and_one_cookie_per_person(make_console: Make) -> None:
    console = await make_console()
    async with await console.client() as a, await console.client() as b:
        csrf_a = await console.sign_in(a, COUNTY_OFFICER)
        csrf_b = await console.sign_in(b, OTHER_OFFICER)
        form = {"level": "normal", "targets": "交口县", "text": "测试通知"}
        async with a.post(console.base + "/console/notices", data=form) as r:
            assert r.status == 403 and "CSRF" in await r.text()
        async with a.post(console.base + "/console/notices", data={**form, "_csrf": csrf_b}) as r:
            assert r.status == 403, "another person's token does not go with this cookie"
        async with a.post(console.base + "/console/notices", data={**form, "_csrf": csrf_a},
                          headers={"Origin": "http://evil.example"}) as r:
            assert r.status == 403
        assert await console.env.rt.notices.latest_of(COUNTY_OFFICER) == []
        async with a.post(console.base + "/console/notices",
                          data={**form, "_csrf": csrf_a}) as r:
            assert r.status == 200, await r.text()
        assert len(await console.env.rt.notices.latest_of(COUNTY_OFFICER)) == 1
        assert await console.env.rt.notices.latest_of(OTHER_OFFICER) == []
    assert len(await _refusals(console, "console.csrf")) == 3


async def test_sign_out_and_idle_expiry(make_console: Make) -> None:
    console = await make_console()
    redis = console.env.redis
    async with await console.client() as s:
        csrf = await console.sign_in(s, COUNTY_OFFICER)
        keys = [k async for k in redis.scan_iter(match="*console:{cs:*")]
        assert len(keys) == 1
        idle = console.env.settings.console.idle_minutes * 60
        await redis.expire(keys[0], 5)
        async with s.get(console.base + "/console/notices") as r:
            assert r.status == 200
        assert idle - 2 <= await redis.ttl(keys[0]) <= idle, "each request renews the idle TTL"
        async with s.post(console.base + "/console/logout", data={"_csrf": csrf},
                          allow_redirects=False) as r:
            assert r.status == 302
        assert await redis.exists(keys[0]) == 0
        async with s.get(console.base + "/console/notices") as r:
            assert r.status == 401
        csrf = await console.sign_in(s, COUNTY_OFFICER)
        key = [k async for k in redis.scan_iter(match="*console:{cs:*")].pop()
        await redis.pexpire(key, 1)  # as if idle past console.idle_minutes
        await asyncio.sleep(0.01)
        async with s.get(console.base + "/console/notices") as r:
            assert r.status == 401
    assert csrf_of("<meta name=\"csrf\" content=\"x\">") == "x"


async def test_one_time_sign_in_link(make_console: Make) -> None:
    """The demo prints such a link: it signs in once, then is spent."""
    console = await make_console()
    sessions = SessionStore(console.env.redis, ConsoleKeys(console.env.keys), idle_seconds=60,
                            max_seconds=600)
    token = await sessions.new_link(COUNTY_OFFICER)
    url = console.base + f"/console/auth/link/{token}"
    async with await console.client() as s, s.get(url, headers=HTML) as r:
        assert r.status == 200 and "李警官" in await r.text()
    async with await console.client() as s, s.get(url, headers=HTML) as r:
        assert r.status == 403


async def test_simulated_wecom_login_pages_check_what_wecom_checks(make_console: Make) -> None:
    console = await make_console()
    sim, corp = console.sim_base, console.env.settings.wecom.corp_id
    good = {"login_type": "CorpApp", "appid": corp, "agentid": "1000002",
            "redirect_uri": console.base + "/console/auth/callback", "state": "abc123"}
    async with await console.client() as s:
        for change, problem in (({"redirect_uri": "https://evil.example/cb"}, "可信域名"),
                                ({"appid": "wwother"}, "appid"), ({"agentid": "9"}, "agentid"),
                                ({"state": "有中文"}, "state")):
            url = sim + "/wwlogin/sso/login?" + urlencode({**good, **change})
            async with s.get(url) as r:
                assert r.status == 400 and problem in await r.text(), change
        console.env.sim.login.trusted_hosts = {"console.gov.example"}
        async with s.get(sim + "/wwlogin/sso/login?" + urlencode(good)) as r:
            assert r.status == 400, "a trusted domain is matched exactly"
        async with s.get(sim + "/sim/client?" + urlencode(
                {"member": COUNTY_OFFICER, "url": "http://127.0.0.1.evil.example/"}),
                allow_redirects=False) as r:
            assert r.status == 400
    wecom = console.env.rt.wecom
    code = await console.code_for(COUNTY_OFFICER)
    user = await wecom.auth_getuserinfo(code)
    assert (user.userid, user.is_member) == (COUNTY_OFFICER, True)
    try:
        await wecom.auth_getuserinfo(code)
    except WeComAPIError as error:
        assert error.errcode == 40029
    else:
        raise AssertionError("a code works once")
    outsider = await wecom.auth_getuserinfo(await console.code_for(OUTSIDER))
    assert not outsider.is_member and outsider.userid.startswith("o")
