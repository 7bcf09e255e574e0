"""Demo steps for the notice and 一标三实 features (appended to bot.cli.demo.STEPS).

A synthetic county (石楼县, from the synthetic 吕梁市) is loaded into the registry and the
simulator; its county officer issues a 紧急预警 to the whole county through app chat, and the
demo follows the preview, the confirmation, live progress and the reports as the simulated
owners confirm on their phones. Then a grid worker collects a person and the reply is masked.
"""

from __future__ import annotations

import asyncio
import re

from bot import appkeys
from bot.cli.demo_kit import GRID_WORKER, Actor, Demo
from bot.masking import scrub
from broadcasts.keys import BroadcastKeys
from broadcasts.quota import QuotaBook
from registry.models import DeliveryKind, Person, Role

COUNTY = "141126"  # 石楼县
NOTICE = ("通知 紧急预警 范围：石楼县 内容：今夜至明晨有强降温和大风，请关好门窗，"
          "注意用火用电安全，老人儿童尽量不要外出。")
PERSON = ("采集 人口\n姓名：张建国\n身份证：142326198811110019\n电话：13812345678\n"
          "地址：龙凤路8号3栋2单元502\n人口类型：常住\n与户主关系：户主")
_NOTICE_ID = re.compile(r"确认\s*(\d+)")


def county_officer() -> Actor:
    return Actor("liu_jingguan", "刘警官", Role.OFFICER, (COUNTY,))


async def load_county(demo: Demo) -> int:
    """Put 石楼县 into the registry and the simulator; returns its number of groups."""
    from registry.synthetic import generate_city

    # 石楼县's share of the city's 5,267 groups and 420,000 residents, roughly
    city = generate_city(seed=2024, counties=(COUNTY,), total_groups=140, residents=11_000)
    officer = county_officer()
    registry = demo.app[appkeys.registry]
    await registry.upsert_nodes(city.nodes)
    await registry.upsert_people(
        [*city.people, Person(officer.userid, officer.name, officer.role, officer.nodes)])
    await registry.upsert_groups(city.groups)
    city.load_into_simulator(demo.sim)
    # usage WeCom knows of (owners' own mass sends this month), as an admin would enter it
    bkeys = BroadcastKeys(demo.app[appkeys.keys])
    await QuotaBook(demo.app[appkeys.redis], bkeys, demo.clock).set_known(city.quota_used)
    demo.sim.load_directory({officer.userid: officer.name})
    kinds = {k: sum(g.kind is k for g in city.groups) for k in DeliveryKind}
    owners = len({g.owner for g in city.groups if g.kind is DeliveryKind.CUSTOMER_GROUP})
    customer, appchat = kinds[DeliveryKind.CUSTOMER_GROUP], kinds[DeliveryKind.APPCHAT]
    demo.say(f"  石楼县已登记：{len(city.groups)} 个居民群（客户群 {customer}、"
             f"应用群聊 {appchat}、群机器人 {kinds[DeliveryKind.WEBHOOK]}），"
             f"{owners} 位网格员群主，{sum(g.member_count for g in city.groups)} 名居民")
    return len(city.groups)


async def step_issue_notice(demo: Demo) -> None:
    total = await load_county(demo)
    officer = county_officer()
    replies = await demo.send(officer, NOTICE)
    found = _NOTICE_ID.search("\n".join(replies))
    if not found:
        demo.fail("预览中没有确认编号")
        return
    demo.notice_id = int(found.group(1))
    demo.notice_groups = total
    demo.notice_started = demo.clock.now()
    await demo.send(officer, f"确认 {demo.notice_id}")


async def step_follow_progress(demo: Demo) -> None:
    notice_id = getattr(demo, "notice_id", 0)
    if not notice_id:
        demo.fail("没有可跟踪的通知")
        return
    officer = county_officer()
    for minute in (2, 5, 9):
        await _until_minute(demo, minute)
        demo.say(f"  …模拟时间 {minute} 分钟")
        await demo.send(officer, f"进度 {notice_id}")
    await _until_minute(demo, 11)
    headers = ("【时限报告】", "【结束报告】")
    reports = [m.content for m in demo.sim.app_messages_to(officer.userid)
               if f"#{notice_id}" in m.content and m.content.startswith(headers)]
    for report in reports:
        demo.say("  ← 机器人主动发给刘警官：" + report.replace("\n", "\n      "))
    if not reports:
        demo.fail("截止时间到了，民警没有收到送达报告")
    _verify_deliveries(demo, notice_id)


def _verify_deliveries(demo: Demo, notice_id: int) -> None:
    delivered: dict[str, int] = {}
    for record in demo.sim.records:
        if record.channel != "app_message" and "强降温" in record.content:
            delivered[record.target] = delivered.get(record.target, 0) + 1
    twice = [chat for chat, n in delivered.items() if n > 1]
    total = getattr(demo, "notice_groups", 0)
    demo.say(f"  模拟企业微信的记录：{len(delivered)}/{total} 个群收到了通知 #{notice_id}，"
             f"重复送达 {len(twice)} 个")
    if twice:
        demo.fail(f"{len(twice)} 个群收到了两次")
    if len(delivered) < 0.95 * total:
        demo.fail("送达的群少于 95%")


async def _until_minute(demo: Demo, minute: float) -> None:
    started = getattr(demo, "notice_started", demo.clock.now())
    await demo.clock.sleep(max(0.0, started + minute * 60 - demo.clock.now()))


async def step_collect_person(demo: Demo) -> None:
    replies = await demo.send(GRID_WORKER, PERSON)
    text = "\n".join(replies)
    if "142326198811110019" in text or "13812345678" in text:
        demo.fail("回复中出现了完整的身份证号或手机号")
    elif scrub(text) == text and replies:
        demo.say("  ✓ 回复只显示脱敏后的号码；身份证号、手机号已加密保存")
    await asyncio.sleep(0)
