"""Campaigns: opening (officers only), links to grid workers, the completion metric, and
reminders of lagging grids (directly and through the shared scheduler)."""

from __future__ import annotations

import time
from dataclasses import replace

from pytest_aiohttp import AiohttpClient

from bot import appkeys
from bot.app import create_app
from bot.audit import AuditLog
from bot.clock import Clock
from bot.settings import Settings
from bot.wecom.simulator import WeComSimulator
from collect import web as collect_web
from collect.campaign import Campaigns
from collect.deps import CollectDeps
from collect.jobs import REMINDER_JOB
from collect.reminders import remind_lagging
from tests.bot.support import FixedClock, wait_until
from tests.collect.conftest import G02, Chat, LeakLog, chat_deps, template, with_api_base
from tests.collect.formkit import PERSON_FIELDS, FormClient, form_app

PEOPLE = (("142326198811110019", "振兴路18号3栋2单元501", "w1"),
          ("141102200506010027", "振兴路18号3栋2单元501", "w1"),  # same household
          ("142326197002020043", "振兴路18号3栋2单元502", "w1"),
          ("14118120100101003X", "阳光小区1号楼1单元101", "w2"))


async def test_only_officers_open_campaigns_and_workers_get_links(chat: Chat) -> None:
    assert "仅限辖区民警" in await chat.send("w1", "发起采集 东关社区")
    assert "不在您负责的区域" in await chat.send("p2", "发起采集 东关社区")
    assert "截止日期" in await chat.send("p1", "发起采集 东关社区 截止 2020-01-01")
    reply = await chat.send("p1", "发起采集 东关社区 截止 2099-12-31")
    assert reply.startswith("已发起采集 C1") and "已向 2 名网格员" in reply
    for worker, grid in (("w1", "东关一网格"), ("w2", "东关二网格")):
        [notice] = [m for m in chat.messages_to(worker) if "集中采集 C1" in m]
        assert grid in notice and "/form/" in notice
    entries = await AuditLog(chat.ctx.redis, chat.ctx.keys, Clock()).entries(
        action="collect.campaign")
    assert [(e.actor, e.outcome) for e in reversed(entries)] == [
        ("w1", "refused"), ("p2", "refused"), ("p1", "ok")]


async def test_completion_counts_households_against_group_members(chat: Chat) -> None:
    await chat.send("p1", "发起采集 东关社区 截止 2099-12-31")
    for number, address, worker in PEOPLE:
        reply = await chat.send(worker, template("人口", name="褚红", id=number,
                                                 phone="13812345678", address=address,
                                                 type="常住"))
        assert reply.startswith("已保存") or "确认保存" in reply
    progress = await chat.send("p1", "采集进度 C1")
    # G01: 2 households of 4 members' worth; G02: 1 of 2
    assert "已覆盖 3/6 户（50%）" in progress
    assert "东关一网格：2/4（50%）" in progress and "东关二网格：1/2（50%）" in progress
    assert "无权查看" in await chat.send("p2", "采集进度 C1")
    assert "东关一网格" in await chat.send("w1", "采集进度 C1"), "workers inside may follow"


async def test_lagging_grids_are_reminded_once_per_interval(
        chat: Chat, aiohttp_client: AiohttpClient, settings: Settings) -> None:
    deps = chat_deps(chat)
    number, address, _ = PEOPLE[0]
    await chat.send("w1", template("人口", name="褚红", id=number, phone="13812345678",
                                   address=address, type="常住"))
    await chat.send("p1", "发起采集 东关社区 截止 2099-12-31")
    [notice] = [m for m in chat.messages_to("w2") if "集中采集" in m]
    client = await aiohttp_client(form_app(settings))
    g02 = FormClient(client, notice[notice.index("/form/"):].split()[0])
    for number, room in (("141102200808080055", "102"), ("142326196606060068", "103")):
        page = await g02.submit({**PERSON_FIELDS, "id_number": number, "street": "阳光小区",
                                 "building": "1", "unit": "1", "room": room, "door": ""})
        assert page.status == 200, page.errors("address")
    share = 0.7  # of the time to the deadline: G01 (0/4) lags, G02 (2/2) does not
    campaign = await Campaigns(deps).get("C1")
    assert campaign is not None
    at = campaign.created_at + share * (campaign.deadline - campaign.created_at)
    later = replace(deps, clock=FixedClock(at=at))
    later = replace(deps, clock=FixedClock(at=deps.now() + 10 * 86400))
    sent: list[tuple[str, str]] = []

    async def send(userid: str, text: str) -> None:
        sent.append((userid, text))

    assert await remind_lagging(later, send) == 1
    [(userid, text)] = sent
    assert userid == "w1" and "已覆盖 0/4 户" in text and "/form/" in text, \
        "G01's person was collected before the campaign opened; G02 is complete"
    assert await remind_lagging(later, send) == 0, "once per interval, whoever runs it"
    chat.leaks.add("reminder", text)


async def test_the_scheduler_runs_the_reminder_job(aiohttp_client: AiohttpClient,
                                                   settings: Settings, deps: CollectDeps,
                                                   sim: tuple[WeComSimulator, str],
                                                   leaks: LeakLog) -> None:
    simulator, base = sim
    fast = with_api_base(settings, base).model_copy(update={
        "clock": settings.clock.model_copy(update={"speed": 120.0, "origin": time.time()}),
        "collect": settings.collect.model_copy(update={"reminder_interval_minutes": 1})})
    app = create_app(fast, (), run_consumer=False, run_scheduler=True,
                     extensions=[collect_web.setup])
    client = await aiohttp_client(app)
    scheduler = client.app[appkeys.scheduler]
    assert REMINDER_JOB in scheduler.job_ids()
    app_clock = client.app[appkeys.clock]
    fast_deps = replace(deps, clock=app_clock)
    root = await deps.registry.node(G02)
    assert root is not None
    await Campaigns(fast_deps).open("p1", root, app_clock.now() + 300)

    async def reminded() -> bool:
        return any("采集提醒" in d.content for d in simulator.app_messages_to("w2"))

    await wait_until(reminded, timeout=15, what="a reminder through the scheduler")
    assert not [d for d in simulator.app_messages_to("w1")
                if "采集提醒" in d.content], "w1's grid is outside the campaign"
