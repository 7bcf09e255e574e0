"""`gridbot demo`: the whole loop on one machine, narrated in Chinese.

Starts a throwaway embedded Redis, the WeCom simulator and the bot (in-process, on loopback),
then plays scenario steps: simulated officers and grid workers send messages through the
simulator's encrypted callbacks, and the demo prints what the bot answered and recorded.
Nothing touches a real WeCom corp or the production data directory.

Steps are a list (`STEPS`) of `Step(title, run)`; `run(demo)` is a coroutine using the
`Demo` helpers (`say`, `send`, `wait_replies` …). Later features append their own steps.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from bot import appkeys
from bot.cli import demo_more
from bot.cli.demo_kit import CITY, GRID_WORKER, NEWCOMER, OFFICER, Demo, Step
from bot.clock import Clock, make_clock
from bot.log import setup_logging
from bot.redis import free_port, redis_url_for
from bot.settings import Settings, load_settings
from cases.demo import case_steps
from deliberation import demo as delib_demo
from registry.models import Person


async def step_grid_worker_help(demo: Demo) -> None:
    await demo.send(GRID_WORKER, "帮助")


async def step_officer_help(demo: Demo) -> None:
    await demo.send(OFFICER, "帮助")


async def step_unknown_sender_and_text(demo: Demo) -> None:
    await demo.send(NEWCOMER, "帮助")
    await demo.send(NEWCOMER, "今天下午开会吗")


async def step_retried_callback(demo: Demo) -> None:
    before = await demo.handled()
    replies_before = len(demo.sim.app_messages_to(GRID_WORKER.userid))
    callback = demo.sim.build_text(GRID_WORKER.userid, "收到，明天上午去社区")
    demo.say(f"  → 企业微信把 {GRID_WORKER.label} 的同一条消息投递 3 次（模拟超时重试）")
    for _ in range(3):
        demo.show_ack(await demo.sim.deliver(callback, retries=0))
    await demo.wait_handled(before + 1)
    await asyncio.sleep(0.5)  # room for a (wrong) second handling to show up
    extra = len(demo.sim.app_messages_to(GRID_WORKER.userid)) - replies_before
    handled = await demo.handled() - before
    if (handled, extra) == (1, 1):
        demo.say("  ✓ 处理 1 次，回复 1 次：重复投递被识别并忽略")
    else:
        demo.fail(f"同一条消息被处理 {handled} 次、回复 {extra} 次（应各 1 次）")


async def step_group_created(demo: Demo) -> None:
    before = await demo.handled()
    name = "离石区-滨河街道-龙凤社区-3号楼"  # the naming rule: county-township-village-building
    demo.say(f"  → {GRID_WORKER.label} 在企业微信里新建客户群「{name}」")
    demo.show_ack(await demo.sim.post_chat_event("wrDEMO0001", "create", name=name,
                                                  owner=GRID_WORKER.userid, member_count=86))
    await demo.wait_handled(before + 1)
    group = await demo.app[appkeys.registry].group("wrDEMO0001")
    if group is None:
        demo.fail("群名册没有登记这个新群")
    elif group.node:
        demo.say(f"  ✓ 群名册已登记：{group.name}，挂在节点 {group.node}，{group.member_count} 人")
    else:
        demo.say(f"  ✓ 群名册已登记：{group.name}（尚未定位到网格，等待「绑定」）")


STEPS: list[Step] = [
    Step("网格员查看帮助", step_grid_worker_help),
    Step("民警查看帮助（命令随角色不同）", step_officer_help),
    Step("名册外的人员：帮助与无法识别的消息", step_unknown_sender_and_text),
    Step("企业微信重复投递同一条回调", step_retried_callback),
    Step("网格员新建居民群：机器人登记到群名册", step_group_created),
    Step("民警向石楼县全县发布紧急预警：预览、确认", demo_more.step_issue_notice),
    Step("送达进度：群主在手机上确认，机器人提醒、逐级催办", demo_more.step_follow_progress),
    Step("网格员采集实有人口（一标三实），回复脱敏", demo_more.step_collect_person),
    *case_steps(),
    Step("说事议事：民警发起议题，每户凭专用链接投票，结束公布结果", delib_demo.step_matter),
    Step("抓阄：名单与种子哈希先公示，开抽后任何人可重新计算", delib_demo.step_draw),
]


def register(subparsers: Any) -> None:
    """Add the `demo` sub-command."""
    parser = subparsers.add_parser("demo", help="演示：模拟企业微信 + 机器人，全程本机运行")
    parser.add_argument("--speed", type=float, default=60.0, help="模拟时钟倍速（默认 60）")
    parser.add_argument("--verbose", action="store_true", help="同时显示运行日志")
    parser.add_argument("--stay", action="store_true",
                        help="步骤结束后继续运行，便于在浏览器里查看警务控制台（Ctrl-C 退出）")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of `gridbot demo`."""
    setup_logging("INFO" if args.verbose else "WARNING")
    with tempfile.TemporaryDirectory(prefix="gridbot-demo-") as tmp, \
            redis_url_for("", Path(tmp) / "redis") as url:
        settings = demo_settings(args.settings, url)
        clock = make_clock(args.speed, time.time())
        try:
            return asyncio.run(play(settings, clock, STEPS, stay=args.stay))
        except KeyboardInterrupt:
            return 0


def demo_settings(path: str | None, redis_url: str) -> Settings:
    """Settings for a throwaway corp: fresh secrets, the given Redis, loopback ports."""
    aes = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    sim = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ,
           "GRIDBOT_WECOM__CORP_ID": "wwgridbotdemo0001", "GRIDBOT_WECOM__AGENT_ID": "1000002",
           "GRIDBOT_WECOM__SECRET": secrets.token_urlsafe(24),
           "GRIDBOT_WECOM__TOKEN": secrets.token_hex(8), "GRIDBOT_WECOM__ENCODING_AES_KEY": aes,
           "GRIDBOT_SECURITY__FIELD_KEYS": f"demo:{_key()}",
           "GRIDBOT_SECURITY__BLIND_INDEX_KEY": _key(),
           "GRIDBOT_REDIS__URL": redis_url, "GRIDBOT_SERVER__HOST": "127.0.0.1",
           "GRIDBOT_SERVER__PORT": str(free_port()),
           "GRIDBOT_WECOM__API_BASE_URL": f"{sim}/cgi-bin/",
           # the console signs in through the simulator's WeCom pages; plain http on loopback
           "GRIDBOT_CONSOLE__QR_LOGIN_URL": f"{sim}/wwlogin/sso/login",
           "GRIDBOT_CONSOLE__OAUTH_URL": f"{sim}/connect/oauth2/authorize",
           "GRIDBOT_CONSOLE__SECURE_COOKIES": "false"}
    return load_settings(path, env)


def _key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


async def play(settings: Settings, clock: Clock, steps: list[Step],
               out: Callable[[str], None] = print, *, stay: bool = False) -> int:
    """Start simulator and bot, run `steps`, stop everything; 0 when all went as expected."""
    from bot.cli.serve import build_app
    from bot.wecom.simulator import SimConfig, WeComSimulator

    sim = WeComSimulator(SimConfig.from_settings(settings, clock))
    sim.load_directory({a.userid: a.name for a in (OFFICER, GRID_WORKER, NEWCOMER)},
                       {GRID_WORKER.userid: [OFFICER.userid]})
    app = build_app(settings, clock)
    runners = [await _serve(sim.app, settings.wecom.api_base_url),
               await _serve(app, f"http://{settings.server.host}:{settings.server.port}/")]
    demo = Demo(settings, clock, sim, app, out)
    try:
        await _seed_registry(app)
        _banner(demo)
        await _console_banner(demo)
        for number, step in enumerate(steps, 1):
            demo.say(f"\n【第 {number} 步】{step.title}")
            await step.run(demo)
        verdict = "全部步骤符合预期" if not demo.failures else f"{len(demo.failures)} 处异常"
        demo.say(f"\n演示结束：机器人共处理回调 {await demo.handled()} 条，{verdict}。")
        if stay:
            demo.say("控制台仍在运行，可在浏览器中继续查看；按 Ctrl-C 退出。")
            await asyncio.Event().wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
    return 1 if demo.failures else 0


async def _serve(app: web.Application, base_url: str) -> web.AppRunner:
    port = int(base_url.split(":")[2].split("/")[0])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _seed_registry(app: web.Application) -> None:
    registry = app[appkeys.registry]
    for node in CITY:
        await registry.upsert_node(node)
    for actor in (OFFICER, GRID_WORKER):
        await registry.upsert_person(Person(actor.userid, actor.name, actor.role, actor.nodes))


async def _console_banner(demo: Demo) -> None:
    """The console's address and a one-time sign-in link for the demo's officer (the same
    session WeCom's QR login gives; the link works once, for an hour)."""
    from console.guard import deps_key

    settings = demo.settings
    base = f"http://{settings.server.host}:{settings.server.port}"
    token = await demo.app[deps_key].sessions.new_link(OFFICER.userid, ttl_seconds=3600)
    demo.say(f"  警务控制台：{base}/console/（企业微信扫码登录由模拟器代替）")
    demo.say(f"  {OFFICER.label}的一次性登录链接：{base}/console/auth/link/{token}")


def _banner(demo: Demo) -> None:
    settings = demo.settings
    demo.say("GridBot 网格群机器人 · 本机演示")
    demo.say(f"  模拟企业微信：{settings.wecom.api_base_url}")
    demo.say(f"  机器人回调地址：http://{settings.server.host}:{settings.server.port}"
             f"{settings.callback.path}")
    demo.say(f"  模拟时钟：{demo.clock.speed:g} 倍速；内置 Redis（演示结束即删除）")
    demo.say(f"  人员：{OFFICER.label}、{GRID_WORKER.label}、{NEWCOMER.label}（名册外）")
