"""The demo's case steps: a patrol report with a photo answered by the officer, a resident's
clue on a 协查通报 through 微信客服, an escalation nobody answered, and the 考核 table."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

from bot import appkeys
from bot.cli import demo_more
from bot.cli.demo_kit import GRID_WORKER, OFFICER, Actor, Demo, Step
from bot.wecom.simulator import WeComSimulator
from cases.assess import assess
from cases.cli import table
from cases.embedded import deps_from_app
from registry.models import Level, Person, Role

SUPERVISOR = Actor("zhang_fuzeren", "张所长", Role.SUPERVISOR, ("141102002",))
GRID = "141102002001-G01"
_CASE = re.compile(r"编号 (E\d+)")
_NOTICE = re.compile(r"确认\s*(\d+)")
WAIT = 20.0  # real seconds


async def _until(demo: Demo, check: Callable[[], bool], what: str) -> bool:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.1)
    demo.fail(f"{WAIT:.0f} 秒内没有{what}")
    return False


def _case_of(replies: list[str]) -> str:
    found = _CASE.search("\n".join(replies))
    return found.group(1) if found else ""


async def step_patrol_report(demo: Demo) -> None:
    replies = await demo.send(GRID_WORKER, "上报 3号楼消防通道堆满杂物，防火门被锁")
    case = _case_of(replies)
    if not case:
        demo.fail("上报后没有收到事件编号")
        return
    before = len(demo.sim.app_messages_to(GRID_WORKER.userid))
    demo.say(f"  → {GRID_WORKER.label} 发送一张现场照片")
    demo.show_ack(await demo.sim.post_image(GRID_WORKER.userid))
    await demo.wait_replies(GRID_WORKER, before + 1)
    await demo.send(OFFICER, f"接单 {case}")
    await demo.send(OFFICER, f"答复 {case} 已联系物业，今天下午清理并打开防火门")
    shown = demo.sim.app_messages_to(GRID_WORKER.userid)
    if not any(f"【事件 {case} 答复】" in d.content for d in shown):
        demo.fail("网格员没有收到民警的答复")
        return
    demo.say(f"  ✓ 网格员已收到 {case} 的答复")
    await demo.send(OFFICER, f"到场 {case}")
    await demo.send(OFFICER, f"办结 {case} 杂物已清走，防火门已打开")
    await demo.send(GRID_WORKER, "满意")


async def step_resident_clue(demo: Demo) -> None:
    officer = demo_more.county_officer()
    text = "通知 协查通报 范围：石楼县 内容：寻找一名走失老人，男，约75岁，穿蓝色外套。"
    found = _NOTICE.search("\n".join(await demo.send(officer, text)))
    if not found:
        demo.fail("协查通报没有预览编号")
        return
    notice = int(found.group(1))
    await demo.send(officer, f"确认 {notice}")
    registry = demo.app[appkeys.registry]
    grids = await registry.nodes_at_level(Level.GRID, officer.nodes[0])
    if not grids:
        demo.fail("石楼县没有网格")
        return
    open_kfid = demo.sim.add_kf_account("社区警务")
    link = await demo.app[appkeys.wecom].kf_add_contact_way(open_kfid, grids[0].code)
    demo.say(f"  民警把 {grids[0].name} 的客服链接放进群公告：{link}")
    resident = "wmDemoResident01"
    await demo.sim.kf_resident_enter(link, resident)
    said = f"线索 #{notice} 我在菜市场门口看到一位穿蓝外套的老人"
    demo.say(f"  → 居民（微信客服）发送：{said}")
    before = len(demo.sim.app_messages_to(officer.userid))
    await demo.sim.kf_resident_says(resident, said)
    ok = await _until(demo, lambda: any("线索" in d.content for d in
                                         demo.sim.app_messages_to(officer.userid)[before:]),
                      "把线索交给发布通报的民警")
    if ok:
        notice_text = next(d.content for d in demo.sim.app_messages_to(officer.userid)[before:]
                           if "线索" in d.content)
        demo.say("  ← 机器人通知发布通报的民警：" + notice_text.replace("\n", "\n      "))
        await _until(demo, lambda: bool(demo.sim.kf_messages_to(resident)), "回复居民")
        for msg in demo.sim.kf_messages_to(resident):
            demo.say(f"  ← 机器人回复居民（微信客服）：{getattr(msg, 'content', msg)}")
        others = [d for d in demo.sim.records.deliveries if "菜市场" in d.content
                  and d.target != officer.userid]
        if others:
            demo.fail("线索被发给了发布通报的民警以外的人")


async def step_escalation(demo: Demo) -> None:
    registry = demo.app[appkeys.registry]
    await registry.upsert_person(Person(SUPERVISOR.userid, SUPERVISOR.name, SUPERVISOR.role,
                                        SUPERVISOR.nodes))
    demo.sim.load_directory({SUPERVISOR.userid: SUPERVISOR.name})
    case = _case_of(await demo.send(GRID_WORKER, "上报 小区门口有人持刀闹事，情况紧急"))
    if not case:
        demo.fail("上报后没有收到事件编号")
        return
    limit = demo.settings.cases.respond_urgent_seconds
    demo.say(f"  （紧急事件应在 {limit // 60} 分钟内接单；民警这次没有回应……）")
    if await _until(demo, lambda: any(f"【超时升级 {case}】" in d.content for d in
                                      demo.sim.app_messages_to(SUPERVISOR.userid)),
                    "把超时事件升级给街道负责人"):
        msg = next(d.content for d in demo.sim.app_messages_to(SUPERVISOR.userid)
                   if f"【超时升级 {case}】" in d.content)
        demo.say("  ← 机器人通知张所长：" + msg.replace("\n", "\n      "))
        await demo.send(SUPERVISOR, f"接单 {case}")


async def step_assessment(demo: Demo) -> None:
    deps = deps_from_app(demo.app)
    now = deps.now()
    result = await assess(deps, start=now - 86400, end=now + 1, level=Level.TOWNSHIP,
                          under="141102")
    demo.say("  gridbot cases assess --level 乡镇街道 --under 141102（今日）：")
    for line in table(result).splitlines():
        demo.say("    " + line)
    if not any(r.cases for r in result.by_node):
        demo.fail("考核表没有统计到事件")


def case_steps() -> list[Step]:
    """The steps, in order; those needing the simulator's 微信客服 and member photos only
    when this build's simulator has them (helper "kf" lands them)."""
    has_kf = hasattr(WeComSimulator, "kf_resident_says")
    steps: list[Step] = []
    if has_kf:
        steps.append(Step("网格员巡查上报（附照片），民警接单并答复", step_patrol_report))
        steps.append(Step("居民通过微信客服提供协查通报线索，只交给发布通报的民警",
                          step_resident_clue))
    steps += [Step("紧急事件无人接单：超时升级给街道负责人", step_escalation),
              Step("考核表：响应率、及时办结率、解决率、满意率", step_assessment)]
    return steps
