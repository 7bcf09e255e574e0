"""`gridbot worker` and `gridbot broadcast …` (the same commands as in app chat).

    gridbot worker [--concurrency N]
    gridbot broadcast issue --as mj00001 "通知 紧急预警 范围：孝义市 内容：……"
    gridbot broadcast confirm|approve|cancel|progress|ack --as mj00001 17
    gridbot broadcast update|retract|solved --as mj00001 17 "内容"
    gridbot broadcast report 17            # the full list of late / failed groups
    gridbot broadcast apikey create --officer mj00001 [--label 指挥中心]

Commands act as the officer named by --as: the CLI is for operators on the server, but every
command is still checked against that officer's role and area and audited with source
"cli:console" (bot.audit.CONSOLE_SOURCE): --as is not proven, so the trail says the act was
done at the server's console in that officer's name. API keys expire (broadcast.api_key_days,
at most api_key_max_days); creating, listing and revoking them is audited.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp

from bot.audit import CONSOLE_NOTE, CONSOLE_SOURCE, AuditLog
from bot.clock import make_clock
from bot.health import LoopGaveUpError
from bot.keys import Keys
from bot.log import setup_logging
from bot.redis import connect, find_running
from bot.settings import Settings, SettingsError, load_settings
from bot.wecom.client import WeComClient, trace_configs
from broadcasts.deps import Runtime
from broadcasts.grammar import GrammarError, parse_follow_up, parse_notice
from broadcasts.quota import BEIJING
from broadcasts.service import BroadcastService, Reply
from broadcasts.worker import Worker
from registry.store import Registry

log = logging.getLogger("gridbot.worker")
AS_HELP = "以哪位民警的身份（userid）；不做身份验证，审计记为服务器控制台操作 cli:console"
FOLLOW = {"update": "更新", "retract": "撤回", "solved": "已破案"}


def register(subparsers: Any) -> None:
    """Add `worker` and `broadcast`."""
    worker = subparsers.add_parser("worker", help="运行通知发送工作进程（可多开）")
    worker.add_argument("--concurrency", type=int, default=0, help="并发任务数（默认取配置）")
    worker.add_argument("--name", default="", help="工作进程名（默认 主机-进程号）")
    worker.set_defaults(func=run_worker)

    bc = subparsers.add_parser("broadcast", help="警务通知：发布、确认、批准、进度、后续",
                               description=CONSOLE_NOTE)
    sub = bc.add_subparsers(dest="action", required=True, metavar="操作")
    issue = sub.add_parser("issue", help="发布通知（与聊天中「通知 …」相同的写法）")
    issue.add_argument("--as", dest="actor", required=True, help=AS_HELP)
    issue.add_argument("text", help="例如：通知 紧急预警 范围：孝义市 内容：……")
    for name, help_ in (("confirm", "确认"), ("approve", "批准"), ("cancel", "取消"),
                        ("progress", "查看进度"), ("ack", "已转达")):
        p = sub.add_parser(name, help=help_, description=CONSOLE_NOTE)
        p.add_argument("--as", dest="actor", required=True, help=AS_HELP)
        p.add_argument("notice_id", type=int)
    for name, word in FOLLOW.items():
        p = sub.add_parser(name, help=f"{word}：发到原通知送达的群", description=CONSOLE_NOTE)
        p.add_argument("--as", dest="actor", required=True, help=AS_HELP)
        p.add_argument("notice_id", type=int)
        p.add_argument("text", nargs="?", default="")
    report = sub.add_parser("report", help="打印未按时送达、失败、状态不明的完整名单")
    report.add_argument("notice_id", type=int)
    keys = sub.add_parser("apikey", help="HTTP 接口密钥（绑定一位民警）")
    keys.add_argument("op", choices=["create", "list", "revoke"])
    keys.add_argument("--officer", default="", help="绑定的民警 userid")
    keys.add_argument("--label", default="", help="用途说明")
    keys.add_argument("--key-id", default="", help="revoke：密钥编号（list 中显示）")
    keys.add_argument("--days", type=float, default=None,
                      help="create：有效期天数（默认 broadcast.api_key_days，"
                           "最多 broadcast.api_key_max_days）")
    bc.set_defaults(func=run_broadcast)


def run_worker(args: argparse.Namespace) -> int:
    """Entry point of `gridbot worker`."""
    settings = _settings(args)
    setup_logging(settings.log.level)
    try:
        asyncio.run(_work(settings, args.concurrency, args.name))
    except LoopGaveUpError as error:  # the supervisor restarts us
        log.error("%s", error)
        return 1
    return 0


async def _work(settings: Settings, concurrency: int, name: str) -> None:
    async with runtime(settings) as rt:
        worker = Worker(rt, name=name, concurrency=concurrency)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        log.info("工作进程 %s 已启动（并发 %d）", worker.name, worker.concurrency)
        await worker.run()
        log.info("工作进程 %s 已停止（处理 %d 个任务）", worker.name, worker.processed)


def run_broadcast(args: argparse.Namespace) -> int:
    """Entry point of `gridbot broadcast …`."""
    settings = _settings(args)
    setup_logging("WARNING")
    reply = asyncio.run(_broadcast(settings, args))
    sys.stdout.write(reply.text + "\n")
    return 0 if reply.ok else 1


async def _broadcast(settings: Settings, args: argparse.Namespace) -> Reply:
    async with runtime(settings) as rt:
        if args.action == "apikey":
            return await _apikey(rt, args)
        if args.action == "report":
            return await _report(rt, args.notice_id)
        from broadcasts.schedule import standalone_scheduling

        with standalone_scheduling(settings, rt) as scheduling:
            return await _command(BroadcastService(rt, scheduling), args, rt)


async def _command(svc: BroadcastService, args: argparse.Namespace, rt: Runtime) -> Reply:
    actor, source = args.actor, CONSOLE_SOURCE  # --as is not proven: see CONSOLE_NOTE
    try:
        if args.action == "issue":
            return await svc.issue(actor, parse_notice(args.text, rt.clock.now()), source=source)
        if args.action in FOLLOW:
            draft = parse_follow_up(FOLLOW[args.action], f"{args.notice_id} {args.text}")
            return await svc.follow_up(actor, draft, source=source)
    except GrammarError as error:
        return Reply(False, str(error))
    method = {"confirm": svc.confirm, "approve": svc.approve, "cancel": svc.cancel,
              "progress": svc.progress, "ack": svc.acknowledge}[args.action]
    return await method(actor, args.notice_id, source=source)


async def _report(rt: Runtime, notice_id: int) -> Reply:
    from broadcasts.progress import snapshot
    from broadcasts.report import final_text, late_lines

    snap = await snapshot(rt, notice_id)
    if snap is None:
        return Reply(False, f"找不到通知 #{notice_id}")
    settled = bool(snap.notice.settled_at)
    header, lines = await final_text(rt, snap, final=settled)
    late = snap.late() if snap.now >= snap.deadline_at else []  # none is late before it
    lines += ["未按时送达："] + await late_lines(rt, snap, late) if late else []
    return Reply(True, "\n".join([snap.text(), header, *lines]))


async def _apikey(rt: Runtime, args: argparse.Namespace) -> Reply:
    """create / list / revoke, each audited as done at the server's console."""
    keys, audit = rt.api_keys, rt.audit
    if args.op == "create":
        person = await rt.registry.person(args.officer)
        if person is None or person.role.value != "officer":
            await audit.record("cli", "broadcast.apikey.create", "refused", target=args.officer,
                               detail="不是登记的民警", source=CONSOLE_SOURCE)
            return Reply(False, f"{args.officer} 不是登记的民警，不能绑定接口密钥")
        try:
            key, key_id = await keys.create(args.officer, args.label, args.days)
        except ValueError as error:
            await audit.record("cli", "broadcast.apikey.create", "refused", target=args.officer,
                               detail=str(error), source=CONSOLE_SOURCE)
            return Reply(False, f"--days：{error}")
        days = keys.default_days if args.days is None else args.days
        await audit.record("cli", "broadcast.apikey.create", "ok", target=args.officer,
                           detail=f"{key_id} {args.label} {days:g} 天", source=CONSOLE_SOURCE)
        return Reply(True, f"密钥（只显示这一次，请妥善保存）：{key}\n编号：{key_id}\n"
                           f"有效期 {days:g} 天")
    if args.op == "revoke":
        ok = await keys.revoke(args.key_id)
        await audit.record("cli", "broadcast.apikey.revoke", "ok" if ok else "refused",
                           target=args.key_id, source=CONSOLE_SOURCE,
                           detail="" if ok else "找不到该密钥编号")
        return Reply(ok, "已吊销" if ok else "找不到该密钥编号")
    rows = await keys.list(args.officer)
    await audit.record("cli", "broadcast.apikey.list", "ok", target=args.officer,
                       detail=f"{len(rows)} 个密钥", source=CONSOLE_SOURCE)
    return Reply(True, "\n".join(_key_line(r, rt.clock.now()) for r in rows) or "没有密钥")


def _key_line(row: dict[str, str], now: float) -> str:
    state = ("已吊销" if row.get("revoked_at")
             else "已过期" if float(row["expires_at"]) <= now else "有效")
    until = datetime.fromtimestamp(float(row["expires_at"]), tz=BEIJING).strftime("%Y-%m-%d")
    return f"{row['key_id']} {row['userid']} {row['label']} {state}（至 {until}）"


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.settings)
    if settings.redis.url:
        return settings
    running = find_running(settings.redis.data_dir)  # the embedded Redis of a running serve
    if running is None:
        raise SettingsError("配置错误 redis.url: gridbot worker/broadcast 需要 gridbot serve "
                            "所用的 Redis；请先在同一数据目录（redis.data_dir）"
                            "启动 gridbot serve，"
                            "或设置环境变量 GRIDBOT_REDIS__URL")
    return settings.model_copy(
        update={"redis": settings.redis.model_copy(update={"url": running.url})})


@contextlib.asynccontextmanager
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """The services of a CLI or worker process."""
    clock = make_clock(settings.clock.speed, settings.clock.origin)
    keys = Keys(settings.redis.prefix)
    redis = connect(settings.redis.url)
    connector = aiohttp.TCPConnector(limit=settings.wecom.max_concurrency)
    try:
        await redis.ping()
        async with aiohttp.ClientSession(connector=connector,
                                         trace_configs=trace_configs()) as session:
            wecom = WeComClient(session, settings.wecom, redis, keys, clock)
            audit = AuditLog(redis, keys, clock,
                             retention_days=settings.security.audit_retention_days)
            registry = await Registry.open(
                redis, keys, clock, max_cached_groups=settings.registry.max_cached_groups)
            yield Runtime.build(settings, redis, keys, clock, wecom, registry, audit)
    finally:
        await redis.aclose()

