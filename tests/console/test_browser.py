"""The console in a real headless Chromium (Debian's, driven by Playwright): a county
officer signs in through the simulated WeCom QR screen, watches a notice's progress change
live while the simulator delivers, opens the late groups, issues and confirms a notice, works
a case, reviews a record and downloads the assessment XLSX; a grid worker and another
county's officer see only their own scope. Every page is screenshotted at desktop and phone
width (test-artefacts/console/) and scanned for full ID and phone numbers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from tests.collect.helpers import masked_id
from tests.collect.leakscan import find_leaks
from tests.console.conftest import COUNTY, COUNTY_OFFICER, OTHER_OFFICER, Console
from tests.console.seed import RECORD_ID_NUMBER, RECORD_PHONE, open_case, pending_record
from tests.leakscan import LEDGER

Make = Callable[..., Awaitable[Console]]
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "console"
DESKTOP = {"viewport": {"width": 1280, "height": 860}}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True,
         "user_agent": "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 wxwork/4.1.22 MicroMessenger"}


class Pages:
    """Screenshots and the leak scan of every page the test shows."""

    def __init__(self) -> None:
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        self.seen: dict[str, str] = {}

    async def keep(self, page: Any, name: str) -> None:
        # whole pages at desktop width; the first screen on a phone (long tables are slow)
        await page.screenshot(path=str(ARTEFACTS / f"{name}.png"),
                              full_page=not name.endswith("-phone"))
        html = await page.content()
        self.seen[name] = html
        hits = LEDGER.scan(f"console page {name}", html)
        hits += find_leaks(html, (RECORD_ID_NUMBER, RECORD_PHONE))
        assert not hits, f"{name}: {hits}"


async def until(page: Any, selector: str, check: Callable[[str], bool], *,
                attribute: str = "", seconds: float = 10) -> None:
    """Poll the element from Python (the page's CSP forbids eval, so no wait_for_function)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        element = page.locator(selector)
        value = (await element.get_attribute(attribute) if attribute
                 else await element.inner_text())
        if value and check(value):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{selector} {attribute} never changed as expected")


async def _sign_in(browser: Any, console: Console, userid: str, **options: Any) -> Any:
    context = await browser.new_context(**(options or DESKTOP))
    page = await context.new_page()
    page.set_default_timeout(10_000)
    await page.goto(console.base + "/console/notices")
    assert "/console/login" in page.url
    await page.click("#qr-login")
    assert page.url.startswith(console.sim_base + "/wwlogin/sso/login")
    await page.select_option("#member", userid)
    await page.click("#scan-button")
    await page.wait_for_url(console.base + "/console/notices")
    return context, page


async def test_county_officer_in_chromium(browser: Any, make_console: Make) -> None:
    started = time.monotonic()
    console = await make_console(speed=60.0,
                                 env={"GRIDBOT_BROADCAST__DEADLINE_SECONDS": "180"})
    record = await pending_record(console)
    case_id = await open_case(console)
    shots = Pages()
    context, page = await _sign_in(browser, console, COUNTY_OFFICER)
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith((console.base, console.sim_base))
            else outside.append(r.url))

    # issue and confirm a notice (preview first: more than 20 groups)
    await shots.keep(page, "notices-desktop")
    await page.select_option("#level", "urgent")
    await page.fill("#targets", "交口县")
    await page.fill("#text", "暴雨红色预警：今夜请远离河道，转移低洼处人员。")
    await page.click("#issue button")
    await page.wait_for_selector("#confirm")
    assert "预览" in await page.inner_text("#flash")
    (nid,) = await console.env.rt.notices.latest_of(COUNTY_OFFICER)
    console.env.start_workers(1)
    await page.click("#confirm button")
    await page.wait_for_selector("#live #delivered")
    assert "已开始发送" in await page.inner_text("#flash")

    # progress changes live (server-sent events): the page is never reloaded
    before = int(await page.inner_text("#delivered"))
    await page.evaluate("window.__same_page = 1")
    await until(page, "#delivered", lambda text: int(text) > before)
    await until(page, "#live", lambda _: True, attribute="data-delay-ms")
    delay_ms = int(await page.get_attribute("#live", "data-delay-ms") or "0")
    assert await page.evaluate("window.__same_page") == 1
    assert 0 <= delay_ms < 2000, delay_ms
    tree = await page.inner_text(".tree")
    assert "吕梁市" in tree and "交口县" in tree, "the roll-up from the city down"
    await shots.keep(page, "notice-desktop")

    # past the (shortened) deadline the late groups show up, live as well
    await until(page, "#late-count", lambda text: int(text) > 0, seconds=20)
    await page.click("#late-link")
    rows = page.locator("#late tbody tr")
    assert await rows.count() > 0
    assert "（网格员）" in await rows.first.inner_text()
    await shots.keep(page, "late-desktop")

    # work a case: 接单
    await page.click("nav >> text=事件")
    await page.click(f"#cases >> text={case_id}")
    await page.click("#accept button")
    assert "已接单" in await page.inner_text("#flash")
    assert "接单" in await page.inner_text("#timeline")
    await shots.keep(page, "case-desktop")

    # review a record: 核查 通过
    await page.click("nav >> text=一标三实")
    review_row = page.locator(f"#review tr:has-text('{record.id}')")
    assert masked_id(RECORD_ID_NUMBER) in await review_row.inner_text(), "shown, but masked"
    await shots.keep(page, "collect-desktop")
    await page.click(f"#pass-{record.id} button")
    assert f"{record.id}：已核查" in await page.inner_text("#flash")
    assert await page.locator(f"#review tr:has-text('{record.id}')").count() == 0

    # assessment: tables, SVG charts and the XLSX download
    await page.click("nav >> text=考核")
    assert await page.locator("svg.chart").count() >= 2
    await shots.keep(page, "assess-desktop")
    async with page.expect_download() as waiting:
        await page.click("#xlsx")
    download = await waiting.value
    saved = ARTEFACTS / download.suggested_filename
    await download.save_as(saved)
    assert saved.suffix == ".xlsx"
    book = load_workbook(saved, read_only=True)
    assert book.sheetnames == ["按辖区", "按民警", "按网格员"]
    assert len(list(book["按辖区"].values)) > 1

    for name in ("coverage", "audit", ""):
        await page.goto(console.base + f"/console/{name}")
        await shots.keep(page, f"{name or 'overview'}-desktop")

    # the same pages at phone width, same session
    phone = await browser.new_context(**PHONE)
    await phone.add_cookies(await context.cookies())
    mobile = await phone.new_page()
    for name, path in (("overview", ""), ("notices", "notices"), ("notice", f"notices/{nid}"),
                       ("late", f"notices/{nid}/late"), ("case", f"cases/{case_id}"),
                       ("collect", "collect"), ("assess", "assess"), ("coverage", "coverage"),
                       ("audit", "audit")):
        await mobile.goto(console.base + f"/console/{path}")
        assert await mobile.evaluate(
            "document.documentElement.scrollWidth <= window.innerWidth + 1"), name
        await shots.keep(mobile, f"{name}-phone")
    assert not outside, f"no asset from the internet: {outside[:3]}"
    await phone.close()
    await context.close()

    # another county's officer and a grid worker see only their own scope
    for userid, listed in ((OTHER_OFFICER, False), (console.grid_worker, True)):
        ctx, other = await _sign_in(browser, console, userid)
        assert (f"#{nid}" in await other.inner_text("#notices")) is listed
        for path in (f"notices/{nid}", f"coverage?node={COUNTY}", f"node/{COUNTY}"):
            response = await other.goto(console.base + f"/console/{path}")
            assert response is not None and response.status == 403, (userid, path)
            assert "无" in await other.inner_text("h1")
        await shots.keep(other, f"refused-{userid}")
        await ctx.close()
    refusals = {(x.actor, x.action) for x in await console.env.rt.audit.entries()
                if x.outcome == "refused"}
    assert {(OTHER_OFFICER, "console.view"), (OTHER_OFFICER, "broadcast.progress"),
            (console.grid_worker, "console.view")} <= refusals
    assert time.monotonic() - started < 60
