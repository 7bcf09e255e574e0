"""The self-declaration form in a real headless Chromium (Debian's, driven by Playwright):
from filling it in on a phone-sized screen to the stored record."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.settings import Settings
from collect.deps import CollectDeps
from collect.models import ReviewState
from tests.collect.conftest import B001, G01
from tests.collect.formkit import campaign_path, form_app
from tests.collect.helpers import masked_id, person_by_id
from tests.conftest import browser_required

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
WARN_ID = "141102199503010018"  # 离石区 code newer than the birth year: confirm first


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
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


async def test_resident_declares_on_a_phone(browser: Any, aiohttp_server: Callable[..., Any],
                                            settings: Settings, deps: CollectDeps) -> None:
    server = await aiohttp_server(form_app(settings))
    base = f"http://{server.host}:{server.port}"
    url = base + await campaign_path(deps, G01)
    context = await browser.new_context(viewport={"width": 375, "height": 740},
                                        device_scale_factor=2, is_mobile=True, has_touch=True)
    page = await context.new_page()
    page.set_default_timeout(10_000)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    await page.goto(url)
    assert await page.title() == "实有人口自主申报"
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), \
        "no sideways scrolling on a phone"

    await page.fill("#name", "蒋小雨")
    await page.fill("#id_number", "360426199101010072")  # checksum error
    await page.fill("#phone", "158 0000 2222")
    await page.select_option("#population_type", "常住人口")
    await page.select_option("#relation", "女")
    await page.select_option("#node", B001)
    await page.fill("#street", "振兴路")
    await page.fill("#door", "18")
    await page.fill("#unit", "2")
    await page.fill("#room", "701")
    await page.click("#submit")
    error = page.locator('[data-field="id_number"]')
    assert "公民身份号码：校验位" in await error.inner_text(), "the error sits by its field"
    assert await page.input_value("#name") == "蒋小雨", "typed values survive"
    assert await page.input_value("#phone") == "", "numbers are never sent back in full"
    assert await page.get_attribute("#phone", "placeholder") == "158****2222", "but are kept"

    await page.fill("#id_number", WARN_ID.lower().replace("18", "1 8", 1))
    await page.click("#submit")
    assert "补录户口" in await page.locator('[data-field="id_number"]').inner_text()
    await page.check("#confirm")
    await page.click("#submit")
    result = page.locator("#result")
    assert "提交成功" in await result.inner_text()
    assert masked_id(WARN_ID) in await result.inner_text()
    assert WARN_ID not in await page.content()
    assert all(r.startswith(base) for r in requests), "no external assets"
    await context.close()

    record = await person_by_id(deps, WARN_ID)
    assert record is not None and record.node == B001 and record.source == "form"
    assert record.state is ReviewState.PENDING and record.fields["relation"] == "女"
    assert record.display("phone") == "158****2222"
