"""Demo steps of 说事议事 (listed in bot/cli/demo.py STEPS): a small matter and a draw by lot.

Six households of 龙凤社区 are put into 一标三实 through collect's service (as the grid
worker would type them), then the officer opens a matter in chat, the grid worker's link
sheet is opened, five households vote through the page over HTTP, one tries twice, the
officer closes it; then a two-stage draw of 4 plots among the 6 households is fixed, drawn and
recomputed from its published record.
"""

from __future__ import annotations

import re

import aiohttp

from bot import appkeys
from bot.cli.demo_kit import GRID_WORKER, OFFICER, Demo
from collect.access import Actor
from collect.models import RecordKind
from collect.results import Outcome, Submission
from collect.service import CollectService
from deliberation import lottery
from deliberation.deps import DelibDeps

VILLAGE = "龙凤社区"
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _id_number(n: int) -> str:
    body = f"142331{1965 + n:04d}0{1 + n % 9}1{n % 10}{500 + n:03d}"
    total = sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def _deps(demo: Demo) -> DelibDeps:
    app = demo.app
    return DelibDeps.build(app[appkeys.redis], app[appkeys.keys], app[appkeys.clock],
                           app[appkeys.settings], app[appkeys.registry], app[appkeys.audit],
                           app[appkeys.wecom])


async def _households(demo: Demo, count: int = 6) -> None:
    service = CollectService(_deps(demo).collect)
    for n in range(1, count + 1):
        values = {"name": "村民" + "甲乙丙丁戊己"[n - 1], "id_number": _id_number(n),
                  "phone": f"1370000{n:04d}", "address": f"龙凤街{n}号",
                  "population_type": "常住", "relation": "户主"}
        result = await service.submit(Submission(RecordKind.PERSON, values,
                                                 Actor.staff(GRID_WORKER.userid), "demo",
                                                 confirmed=True, override=True))
        if result.outcome is not Outcome.STORED:
            demo.fail(f"演示住户未能录入：{result.message}")
    demo.say(f"  （演示数据：{VILLAGE} {count} 户已由网格员录入一标三实，姓名、证件号加密保存）")


async def _vote(http: aiohttp.ClientSession, link: str, option: int) -> str:
    async with http.get(link) as page:
        body = await page.text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', body)
    if csrf is None:
        return re.sub(r"<[^>]+>", "", body.split("<h1>")[-1])[:80]
    async with http.post(link, data={"option": str(option), "csrf": csrf.group(1)}) as answer:
        return re.sub(r"<[^>]+>", " ", (await answer.text()).split("<h1>")[-1])[:160]


async def step_matter(demo: Demo) -> None:
    await _households(demo)
    replies = await demo.send(OFFICER, f"议题\n村：{VILLAGE}\n标题：硬化龙凤街路面\n"
                                       "说明：村集体出资硬化龙凤街路面\n截止：2天")
    matter = re.search(r"议题 (YT\d+)", "\n".join(replies))
    if matter is None:
        demo.fail("议题没有发起")
        return
    sheet = next((re.search(r"http\S+", d.content) for d in
                  demo.sim.app_messages_to(GRID_WORKER.userid) if matter.group(1) in d.content),
                 None)
    if sheet is None:
        demo.fail("网格员没有收到表决链接清单")
        return
    demo.say(f"  ← 机器人发给{GRID_WORKER.name}：表决链接清单 {sheet.group(0)[:60]}…")
    async with aiohttp.ClientSession() as http:
        async with http.get(sheet.group(0)) as page:
            links = re.findall(r"<code>(http[^<]+)</code>", await page.text())
        demo.say(f"  网格员打开清单：{len(links)} 户，每户一个专用链接，逐一转给本人")
        for n, (link, option) in enumerate(zip(links[:5], (0, 0, 0, 1, 0), strict=False), 1):
            answer = await _vote(http, link, option)
            choice = ("同意", "不同意")[option]
            demo.say(f"  第{n}户在手机上选「{choice}」：{answer.split('。')[0]}")
        again = await _vote(http, links[0], 1)
        demo.say(f"  第1户想再投一次：{again.strip()[:40]}")
    await demo.send(OFFICER, f"议题 进度 {matter.group(1)}")
    replies = await demo.send(OFFICER, f"议题 结束 {matter.group(1)}")
    if not any("获通过" in r for r in replies):
        demo.fail("表决结果不是预期的通过")
    else:
        demo.say(f"  ✓ 5/{len(links)} 户参加（达到三分之二），到会过半数同意；链头随结果公布，"
                 "回执可核对")


async def step_draw(demo: Demo) -> None:
    replies = await demo.send(OFFICER, f"抓阄\n村：{VILLAGE}\n标题：新宅基地分配\n"
                                       "物品：1-4号地块\n方式：两段\n公开值来源：次日深证成指收盘点位")
    draw = re.search(r"抓阄 (ZJ\d+)", "\n".join(replies))
    if draw is None:
        demo.fail("抓阄没有发起")
        return
    await demo.send(OFFICER, f"抓阄 公开值 {draw.group(1)} 10523.41")
    await demo.send(OFFICER, f"抓阄 开抽 {draw.group(1)}")
    record = await _deps(demo).draws.get(draw.group(1))
    if record is None:
        demo.fail("找不到抓阄记录")
        return
    check = lottery.verify(record[0])
    if check.ok:
        demo.say("  ✓ 按公示的名单、种子哈希和公开值重新计算（gridbot deliberation verify-draw），"
                 "分配结果完全相同")
    else:
        demo.fail("抓阄核对不一致：" + "；".join(check.problems))
