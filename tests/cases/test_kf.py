"""Residents through 微信客服, end to end: the simulator posts real kf_msg_or_event callbacks,
the bot pulls sync_msg and dispatches through handlers.ROUTERS, answers go back by send_msg
(or to the grid worker when 微信客服 will not take them)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web

from bot import appkeys
from bot.app import create_app, make_context
from bot.audit import AuditLog
from bot.clock import REAL_TIME
from bot.redis import free_port
from bot.router import dispatch
from bot.settings import Settings
from bot.wecom.simulator import SimConfig, WeComSimulator
from bot.wecom.simulator.residents import SimLocation
from broadcasts.keys import BroadcastKeys
from broadcasts.models import Content, Notice, NoticeLevel, NoticeStatus, TargetSpec
from broadcasts.notices import NoticeStore
from cases.cli import kf_link
from cases.deps import CasesDeps
from cases.models import CaseKind, Status
from cases.service import CaseService, Refused
from handlers import ROUTERS
from tests.bot.support import wait_until
from tests.cases.conftest import G01, PEOPLE, build_world

ServerFactory = Callable[..., Any]


class World:
    def __init__(self, aiohttp_server: ServerFactory, make_settings: Callable[..., Settings]):
        self._server = aiohttp_server
        self.sim_port, self.bot_port = free_port(), free_port()
        self.settings = make_settings({
            "GRIDBOT_WECOM__API_BASE_URL": f"http://127.0.0.1:{self.sim_port}/cgi-bin/",
            "GRIDBOT_SERVER__PORT": str(self.bot_port)})
        self.sim = WeComSimulator(SimConfig.from_settings(
            self.settings, REAL_TIME,
            callback_url=f"http://127.0.0.1:{self.bot_port}{self.settings.callback.path}"))
        self.sim.load_directory({p.userid: p.name for p in PEOPLE})
        self.open_kfid = self.sim.add_kf_account("社区警务")
        self.app: web.Application | None = None

    async def start(self) -> None:
        await self._server(self.sim.app, port=self.sim_port)
        self.app = create_app(self.settings, ROUTERS, run_scheduler=False)
        await self._server(self.app, port=self.bot_port)
        await build_world(self.app[appkeys.redis], self.app[appkeys.keys], REAL_TIME)

    @property
    def deps(self) -> CasesDeps:
        assert self.app is not None
        ctx = make_context(self.app)
        return CasesDeps.from_context(ctx)

    def service(self) -> CaseService:
        return CaseService(self.deps, source="test")

    async def link(self, node: str = G01) -> str:
        assert self.app is not None
        return await self.app[appkeys.wecom].kf_add_contact_way(self.open_kfid, node)

    def said_to(self, resident: str) -> list[str]:
        return [o.content for o in self.sim.kf_messages_to(resident)]

    def to(self, userid: str) -> list[str]:
        return [d.content for d in self.sim.app_messages_to(userid)]

    async def case_count(self) -> int:
        raw = await self.deps.redis.get(self.deps.keys.seq())
        return int(raw or 0)

    async def wait_case(self, number: int) -> None:
        async def made() -> bool:  # the record exists and its officers were told
            case = await self.deps.store.get(f"E{number}")
            return case is not None and all(
                any(f"E{number}】" in m or f"E{number}" in m for m in self.to(u))
                for u in case.officers)
        await wait_until(made, timeout=10, what=f"case E{number}")


@pytest.fixture
async def world(aiohttp_server: ServerFactory, make_settings: Callable[..., Settings],
                redis: aioredis.Redis) -> World:
    w = World(aiohttp_server, make_settings)
    await w.start()
    return w


async def test_resident_from_a_group_link_reports_and_hears_the_answer(world: World) -> None:
    await world.sim.kf_resident_enter(await world.link(), "wmRes1")
    await world.sim.kf_resident_says("wmRes1", "小区3号楼楼道里有人在电动车充电，很危险")
    await world.wait_case(1)
    await world.sim.kf_resident_says("wmRes1", b"\xff\xd8\xffphoto")
    await world.sim.kf_resident_says("wmRes1", SimLocation(37.15, 111.78, "东关街3号楼"))

    async def attached() -> bool:
        case = await world.deps.store.get("E1")
        return case is not None and bool(case.photos) and bool(case.location)

    await wait_until(attached, what="photo and location on E1")
    case = await world.deps.store.get("E1")
    assert case is not None and case.node == G01 and case.reporter == ""
    assert "wmRes1" not in case.to_json()  # the identity is sealed, not stored in clear
    assert any("已收到，编号 E1" in m for m in world.said_to("wmRes1"))
    assert any("【新事件 E1】" in m for m in world.to("p1"))
    await world.sim.post_text("p1", "答复 E1 已通知物业，今晚前清理")

    async def answered() -> bool:
        return any("【事件 E1 答复】已通知物业" in m for m in world.said_to("wmRes1"))

    await wait_until(answered, what="the answer in 微信客服")
    await world.sim.post_text("p1", "办结 E1 已清理，充电车辆移走")
    await wait_until(_has(world, "wmRes1", "请评价"), what="the rating question")
    await world.sim.kf_resident_says("wmRes1", "不满意")

    async def reopened() -> bool:
        c = await world.deps.store.get("E1")
        return c is not None and c.status is Status.REOPENED

    await wait_until(reopened, what="不满意 reopening E1")

    async def supervisor_told() -> bool:
        return any("【回访 E1】" in m for m in world.to("s1"))

    await wait_until(supervisor_told, what="the supervisor's 回访 notice")
    assert await world.case_count() == 1


def _has(world: World, resident: str, text: str) -> Callable[[], Any]:
    async def check() -> bool:
        return any(text in m for m in world.said_to(resident))
    return check


async def test_answer_after_48_hours_goes_to_the_grid_worker(world: World) -> None:
    await world.sim.kf_resident_enter(await world.link(), "wmOld", ago=50 * 3600)
    await world.sim.kf_resident_says("wmOld", "路灯坏了一个多月", ago=49 * 3600)
    await world.wait_case(1)
    case = await world.service().answer("p1", "E1", "已报修，本周内修好")
    assert case.relayed == 1
    assert any("【请转告居民 E1】" in m and "本周内修好" in m for m in world.to("w1"))
    assert not any("本周内修好" in m for m in world.said_to("wmOld"))
    timeline = await world.deps.store.timeline(case)
    assert any(e.action == "转告" and "已转网格员转告" in e.text for e in timeline)


async def test_msg_send_fail_hands_the_answer_to_the_grid_worker(world: World) -> None:
    await world.sim.kf_resident_enter(await world.link(), "wmBlock")
    await world.sim.kf_resident_says("wmBlock", "有人在小区里乱扔垃圾")
    await world.wait_case(1)
    await world.service().answer("p1", "E1", "已安排保洁")
    sent = next(o for o in world.sim.kf_messages_to("wmBlock") if "已安排保洁" in o.content)
    await world.sim.kf_fail_send(sent.msgid, 10)

    async def relayed() -> bool:
        return any("【请转告居民 E1】" in m for m in world.to("w1"))

    await wait_until(relayed, what="the relay after msg_send_fail")
    case = await world.deps.store.get("E1")
    assert case is not None and case.relayed == 1


async def _assist_notice(world: World, issuer: str) -> int:
    deps = world.deps
    store = NoticeStore(deps.redis, BroadcastKeys(deps.keys.keys), deps.clock)
    number = await store.next_id()
    await store.save(Notice(number, NoticeLevel.ASSIST, Content("寻找走失老人"),
                            TargetSpec(("141181",)), issuer, deps.now(),
                            status=NoticeStatus.SETTLED))
    return number


async def test_clue_reaches_only_the_issuing_officer(world: World,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    notice = await _assist_notice(world, "p2")  # issued by an officer outside the grid
    await world.sim.kf_resident_enter(await world.link(), "wmTip")
    await world.sim.kf_resident_says("wmTip", f"线索 #{notice} 我在菜市场见过他，电话13812345678")
    await world.wait_case(1)
    case = await world.deps.store.get("E1")
    assert case is not None and case.kind is CaseKind.CLUE and case.officers == ("p2",)
    assert any("线索" in m for m in world.to("p2"))
    for other in ("p1", "a1", "w1", "s1", "s2"):
        assert not any("菜市场" in m for m in world.to(other)), other
    raw = case.to_json() + "".join(e.to_json() for e in await world.deps.store.timeline(case))
    assert "wmTip" not in raw and "13812345678" not in raw
    for outsider in ("p1", "s1", "w1"):
        with pytest.raises(Refused):
            await world.service().view(outsider, "E1")
    view = await world.service().view("p2", "E1")
    assert "wmTip" in view.reporter_label and "138****5678" in view.reporter_label
    assert not [r for r in caplog.records if "wmTip" in r.getMessage()]  # not in any log
    audit = AuditLog(world.deps.redis, world.deps.keys.keys, REAL_TIME)
    assert not [e for e in await audit.entries() if "wmTip" in e.detail + e.target]
    assert [e.actor for e in await audit.entries(action="cases.view_tipster")] == ["p2"]
    assert {e.actor for e in await audit.entries() if e.outcome == "refused"} >= {"p1", "s1",
                                                                                 "w1"}


async def test_clue_given_when_the_bot_asks_for_the_number(world: World) -> None:
    notice = await _assist_notice(world, "p1")
    await world.sim.kf_resident_enter(await world.link(), "wmAsk")
    await world.sim.kf_resident_says("wmAsk", "我好像见过协查通报上那个人")
    await wait_until(_has(world, "wmAsk", "是哪一期协查通报"), what="the bot's question")
    await world.sim.kf_resident_says("wmAsk", str(notice))
    await world.wait_case(1)
    case = await world.deps.store.get("E1")
    assert case is not None and case.kind is CaseKind.CLUE and case.notice == notice
    assert "见过协查通报上那个人" in case.text


async def test_callback_three_times_and_a_page_read_twice_make_one_case(world: World) -> None:
    await world.sim.kf_resident_enter(await world.link(), "wmDup")
    posted = await world.sim.kf_resident_says("wmDup", "井盖丢失了", deliver=False)
    for _ in range(3):
        await world.sim.deliver(posted.callback, retries=0)
    await world.wait_case(1)
    # the same page read again (a worker killed before storing its cursor): same messages
    assert world.app is not None
    page = await world.app[appkeys.wecom].kf_sync_msg(open_kfid=world.open_kfid)
    ctx = make_context(world.app)
    for message in page.items:
        await dispatch(ROUTERS, message, ctx)
    await world.sim.kf_resident_says("wmDup", "在二号楼门口")
    await world.wait_case(2)
    assert await world.case_count() == 2  # one case per resident message, not more


async def test_resident_without_a_link_and_bad_input_change_nothing(world: World) -> None:
    await world.sim.kf_resident_enter(world.sim.state.kf.add_link(world.open_kfid, ""), "wmNo")
    await world.sim.kf_resident_says("wmNo", "楼下有人吵架")
    await wait_until(_has(world, "wmNo", "链接进入"), what="the link hint")
    await world.sim.kf_resident_enter(await world.link(), "wmBig")
    await world.sim.kf_resident_says("wmBig", b"\xff\xd8\xffphoto")
    await wait_until(_has(world, "wmBig", "请先用文字"), what="photo-first answer")
    await world.sim.kf_resident_says("wmBig", "很长" * 5000)
    await wait_until(_has(world, "wmBig", "内容过长"), what="too-long answer")
    assert await world.case_count() == 0


async def test_cli_link_prints_a_link_whose_residents_reach_the_node(world: World,
                                                                     tmp_path: Path) -> None:
    deps = world.deps
    url, png = await kf_link(deps, G01, tmp_path / "qr.png")
    assert png.read_bytes().startswith(b"\x89PNG") and url.startswith("http")
    await world.sim.kf_resident_enter(url, "wmQr")
    await world.sim.kf_resident_says("wmQr", "小区东门积水很深")
    await world.wait_case(1)
    case = await deps.store.get("E1")
    assert case is not None and case.node == G01


async def test_grid_worker_report_with_photo_and_location_by_callbacks(world: World) -> None:
    await world.sim.post_text("w1", "上报 3号楼消防通道堆满杂物")
    await world.wait_case(1)
    await world.sim.post_image("w1")
    await world.sim.post_location("w1", 37.15, 111.78, label="东关街3号楼")

    async def attached() -> bool:
        case = await world.deps.store.get("E1")
        return (case is not None and len(case.photos) == 1 and "东关街3号楼" in case.location
                and any("已将位置附在事件 E1" in m for m in world.to("w1")))

    await wait_until(attached, what="photo and location on E1")
    replies = world.to("w1")
    assert any("已上报，编号 E1" in m for m in replies)
    assert any("已将照片（共 1 张）附在事件 E1" in m for m in replies)
    assert any("已将位置附在事件 E1" in m for m in replies)
    await world.sim.post_text("p1", "接单 E1")

    async def told() -> bool:
        return any("已由 民警甲（民警） 接单" in m for m in world.to("w1"))

    await wait_until(told, what="the reporter told who took it")
