"""Console fixtures: the simulator (with its OAuth and QR login pages) over real HTTP, the
real Redis, two counties of the synthetic city, and the production app (bot.cli.serve's
build_app, so /console/ is wired exactly as in `gridbot serve`) on a loopback port."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web

from bot.cli.serve import build_app
from registry.models import Person, Role
from tests.broadcasts.conftest import COUNTY_OFFICER, Env, make_env  # noqa: F401
from tests.conftest import browser_required

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

COUNTY, OTHER_COUNTY = "141130", "141129"
TWO_COUNTIES = {"seed": 11, "counties": (COUNTY, OTHER_COUNTY), "total_groups": 320,
                "residents": 8_000}
OTHER_OFFICER = "mj_other1"


@dataclass
class Console:
    env: Env
    runner: web.AppRunner
    base: str
    sim_base: str
    grid_worker: str
    grid_worker_grid: str

    async def client(self) -> aiohttp.ClientSession:
        """A cookie-keeping HTTP client (cookies of 127.0.0.1 kept: unsafe=True)."""
        return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def sign_in(self, session: aiohttp.ClientSession, userid: str) -> str:
        """QR login as `userid` through the simulator's pages; returns the CSRF token."""
        async with session.get(self.base + "/console/login/qr", allow_redirects=True) as r:
            assert r.status == 200, await r.text()
            page = await r.text()
        fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page))
        fields = {k: v.replace("&amp;", "&") for k, v in fields.items()}
        fields["member"] = userid
        async with session.post(self.sim_base + "/wwlogin/sso/scan", data=fields,
                                allow_redirects=True) as r:
            body = await r.text()
            assert r.status == 200, body
        return csrf_of(body)

    async def code_for(self, userid: str) -> str:
        return self.env.sim.login.issue_code(userid)


def csrf_of(page: str) -> str:
    found = re.search(r'<meta name="csrf" content="([^"]*)"', page)
    assert found, "no csrf meta on the page"
    return found.group(1)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
async def make_console(make_env: Callable[..., Awaitable[Env]]  # noqa: F811
                       ) -> AsyncIterator[Callable[..., Awaitable[Console]]]:
    made: list[web.AppRunner] = []

    async def build(speed: float = 20.0, env: dict[str, str] | None = None,
                    secure: bool = False, **sim: Any) -> Console:
        made_env = await make_env(speed=speed, city=TWO_COUNTIES, env=env, **sim)
        return await _console(made_env, secure)

    async def _console(env: Env, secure: bool) -> Console:
        sim_base = env.api_url.removesuffix("/cgi-bin/")
        other = Person(OTHER_OFFICER, "周警官", Role.OFFICER, (OTHER_COUNTY,))
        await env.rt.registry.upsert_person(other)
        env.sim.load_directory({OTHER_OFFICER: "周警官"})
        worker = next(p for p in env.city.people if p.role is Role.GRID_WORKER
                      and p.nodes and p.nodes[0].startswith(COUNTY))
        settings = env.settings.model_copy(update={"console": env.settings.console.model_copy(
            update={"oauth_url": sim_base + "/connect/oauth2/authorize",
                    "qr_login_url": sim_base + "/wwlogin/sso/login",
                    "secure_cookies": secure})})
        app = build_app(settings, env.clock, embedded_worker=False)
        runner = web.AppRunner(app, shutdown_timeout=2.0, handler_cancellation=True)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        made.append(runner)
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return Console(env, runner, base, sim_base, worker.userid, worker.nodes[0])

    yield build
    for runner in made:
        await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium driven by Playwright (as tests/collect/test_browser.py)."""
    if not shutil.which(CHROMIUM):
        reason = (f"浏览器测试未运行：找不到 {CHROMIUM}（apt-get install -y chromium）；"
                  "设置 GRIDBOT_REQUIRE_BROWSER 时此项为失败")
        if browser_required():
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()
