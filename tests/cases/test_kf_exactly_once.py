"""Acceptance: the same kf_msg_or_event callback delivered three times and sync_msg pages read
twice (a worker killed between reading a page and storing its cursor) make exactly one case
per resident message — the real app, the real intake (bot.kf) and the cases handlers, the
residents in the WeCom simulator over loopback HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.asyncio as aioredis

from bot import appkeys
from bot import kf as kf_intake
from bot.app import create_app, make_context
from bot.clock import REAL_TIME
from bot.events import KfNotice
from bot.keys import Keys
from bot.redis import free_port
from bot.settings import Settings
from bot.wecom.parse import parse_event
from bot.wecom.simulator import SimConfig, WeComSimulator
from cases.deps import CasesDeps
from cases.service import CaseService
from handlers import ROUTERS
from tests.bot.support import wait_until
from tests.cases.conftest import G01, build_world

ServerFactory = Callable[..., Any]


async def test_callback_three_times_and_a_page_read_twice_make_one_case_per_message(
    aiohttp_server: ServerFactory, make_settings: Callable[..., Settings],
    redis: aioredis.Redis, keys: Keys,
) -> None:
    sim_port, bot_port = free_port(), free_port()
    settings = make_settings({
        "GRIDBOT_WECOM__API_BASE_URL": f"http://127.0.0.1:{sim_port}/cgi-bin/",
        "GRIDBOT_SERVER__PORT": str(bot_port), "GRIDBOT_KF__LEASE_SECONDS": "1.0",
        "GRIDBOT_CALLBACK__CLAIM_IDLE_SECONDS": "0.3"})
    await build_world(redis, keys, REAL_TIME)
    sim = WeComSimulator(SimConfig.from_settings(
        settings, REAL_TIME, callback_url=f"http://127.0.0.1:{bot_port}{settings.callback.path}",
        member_app_messages_per_minute=100_000, member_app_messages_per_hour=1_000_000))
    open_kfid = sim.add_kf_account("东关社区警务室")
    await aiohttp_server(sim.app, port=sim_port)
    app = create_app(settings, ROUTERS, run_scheduler=False)
    await aiohttp_server(app, port=bot_port)
    link = await app[appkeys.wecom].kf_add_contact_way(open_kfid, G01)  # a group's 客服 link

    residents = ("wmA", "wmB", "wmC")
    for resident in residents:
        sim.kf_resident(resident, "never")
        await sim.kf_resident_enter(link, resident, deliver=False)
    texts = {"wmA": "楼道消防门坏了，一直关不上", "wmB": "小区东门有辆车停了三天",
             "wmC": "邻居家半夜一直有人吵架"}
    said = [await sim.kf_resident_says(r, texts[r], deliver=False) for r in residents]

    # worker A reads the page, hands every message to the handlers, dies before the cursor
    at_cursor = asyncio.Event()

    class KilledBeforeCursor(kf_intake.KfIntake):
        """Stops dead (no heartbeat, no clean-up, nothing more) before storing the cursor,
        as a process killed with SIGKILL there would."""

        @contextlib.asynccontextmanager
        async def _renewing(self, lease: str) -> AsyncIterator[None]:
            yield  # a killed process renews nothing: its lease runs out

        async def _store_cursor(self, open_kfid: str, cursor: str) -> None:
            at_cursor.set()
            await asyncio.Event().wait()  # never returns: the process is gone

    ctx = make_context(app)
    token = _token(said[-1])
    worker = KilledBeforeCursor(ctx.redis, ctx.keys, ctx.wecom, settings.kf,
                                kf_intake.routers_of(ctx), ctx, name="worker-a")
    killed = asyncio.create_task(worker.on_notice(open_kfid, token))
    await asyncio.wait_for(at_cursor.wait(), 15)
    assert await redis.get(keys.kf_account(open_kfid, "lease")) == "worker-a"

    # WeCom delivers the callback three times; the next worker reads the same page again
    for _ in range(3):
        assert (await sim.deliver(said[-1].callback, retries=0)).ok
    again = await sim.kf_resident_says("wmA", "补充：门在三楼东侧", deliver=False)
    await sim.deliver(again.callback)

    deps = CasesDeps.from_context(make_context(app))
    service = CaseService(deps, source="test")

    async def four_cases() -> bool:
        return len(await service.queue("p1")) >= 4

    await wait_until(four_cases, timeout=20, what="a case for every resident message")
    await app[appkeys.consumer].drain(10.0)
    await asyncio.sleep(0.3)  # anything still (wrongly) on its way would show now
    cases = await service.queue("p1")
    assert len(cases) == 4 and all(c.node == G01 for c in cases)
    answers = Counter(m.external_userid for m in
                      (m for r in residents for m in sim.kf_messages_to(r))
                      if "已收到，编号" in m.content)
    assert answers == Counter({"wmA": 2, "wmB": 1, "wmC": 1})
    assert sim.calls("kf/sync_msg") >= 2  # the page was read by both workers
    killed.cancel()  # the frozen stand-in for the dead process
    await asyncio.gather(killed, return_exceptions=True)


def _token(posted: Any) -> str:
    notice = parse_event(posted.callback.plaintext)
    assert isinstance(notice, KfNotice)
    return notice.token
