"""`gridbot collect …`: export records for the station, and rotate the field keys.

    gridbot collect export --node 141181 --type person [--state 待核查] [--since 2026-01-01]
                           [--until 2026-12-31] [--format csv|xlsx] --out FILE --as USERID
                           [--masked]
    gridbot collect rotate-keys [--batch 500] [--restart]
    gridbot collect upgrade-records [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.audit import CONSOLE_NOTE, CONSOLE_SOURCE, AuditLog
from bot.clock import make_clock
from bot.keys import Keys
from bot.log import setup_logging
from bot.redis import connect, redis_url_for
from bot.settings import Settings, SettingsError, load_settings
from collect.deps import CollectDeps
from collect.export import ExportForbiddenError, ExportQuery, export
from collect.models import RecordKind, ReviewState
from collect.rotate import rotate
from collect.upgrade import upgrade
from collect.validate import CHINA_TZ
from registry.store import Registry

Work = Callable[[CollectDeps, argparse.Namespace], Awaitable[int]]


def out(text: str) -> None:
    sys.stdout.write(text + "\n")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("collect", help="一标三实：导出记录、轮换加密密钥")
    sub = parser.add_subparsers(dest="collect_command", required=True, metavar="子命令")
    p = sub.add_parser("export", help="导出记录（仅限辖区民警，全程留痕）",
                       description=CONSOLE_NOTE)
    p.add_argument("--node", required=True, help="节点编码或名称路径（导出该节点及以下）")
    p.add_argument("--type", required=True, choices=[k.value for k in RecordKind],
                   help="记录类型：person 人口 / house 房屋 / unit 单位 / address 地址")
    p.add_argument("--state", default="", help="核查状态：待核查 / 已核查 / 退回")
    p.add_argument("--since", default="", help="更新时间起（YYYY-MM-DD，含）")
    p.add_argument("--until", default="", help="更新时间止（YYYY-MM-DD，含）")
    p.add_argument("--format", default="csv", choices=["csv", "xlsx"])
    p.add_argument("--out", required=True, type=Path, help="输出文件")
    p.add_argument("--as", dest="actor", required=True,
                   help="导出人的企业微信 userid；不做身份验证，"
                        "审计记为服务器控制台操作 cli:console")
    p.add_argument("--masked", action="store_true", help="身份证号、电话、姓名脱敏导出")
    p.set_defaults(func=_command(_export))
    p = sub.add_parser("rotate-keys", help="用当前首个密钥重新加密所有记录（可中断续跑）")
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--restart", action="store_true", help="从头开始，而不是续跑")
    p.set_defaults(func=_command(_rotate))
    p = sub.add_parser("upgrade-records", help="把旧格式的记录改写为紧凑格式（可重复运行）")
    p.add_argument("--batch", type=int, default=500)
    p.set_defaults(func=_command(_upgrade))


def _command(work: Work) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        settings = load_settings(args.settings)
        setup_logging(settings.log.level)  # long commands say what they do, numbers scrubbed
        with redis_url_for(settings.redis.url, settings.redis.data_dir) as url:
            return asyncio.run(_with_deps(url, settings, args, work))

    return run


async def _with_deps(url: str, settings: Settings, args: argparse.Namespace, work: Work) -> int:
    redis = connect(url)
    keys = Keys(settings.redis.prefix)
    clock = make_clock(settings.clock.speed, settings.clock.origin)
    try:
        audit = AuditLog(redis, keys, clock, settings.security.audit_retention_days)
        registry = await Registry.open(redis, keys, clock,
                                       max_cached_groups=settings.registry.max_cached_groups)
        deps = CollectDeps.build(redis, keys, clock, settings, registry, audit)
        return await work(deps, args)
    except SettingsError as error:
        out(str(error))
        return 2
    finally:
        await redis.aclose()


def _day(text: str, end: bool) -> float | None:
    if not text:
        return None
    day = dt.date.fromisoformat(text)
    moment = dt.time(23, 59, 59, 999999) if end else dt.time(0, 0)
    return dt.datetime.combine(day, moment, CHINA_TZ).timestamp()


async def _export(deps: CollectDeps, args: argparse.Namespace) -> int:
    node = await deps.registry.node(args.node)
    found = [node] if node else await deps.registry.find_nodes(args.node)
    state = ReviewState.parse(args.state) if args.state else None
    if len(found) != 1 or (args.state and state is None):
        out("导出失败：找不到唯一的节点，或核查状态不是 待核查/已核查/退回")
        return 2
    try:
        query = ExportQuery(found[0].code, RecordKind(args.type), state,
                            _day(args.since, False), _day(args.until, True), args.format,
                            args.masked)
    except ValueError:
        out("导出失败：日期应写成 YYYY-MM-DD")
        return 2
    try:
        rows = await export(deps, args.actor, query, args.out, source=CONSOLE_SOURCE)
    except ExportForbiddenError as error:
        out(f"导出被拒绝：{error}（已记录）")
        return 3
    out(f"已导出 {rows} 条记录到 {args.out}")
    return 0


async def _rotate(deps: CollectDeps, args: argparse.Namespace) -> int:
    report = await rotate(deps, batch=args.batch, restart=args.restart)
    out(report.line())
    return 0 if report.conflicts == 0 and report.unreadable == 0 else 1


async def _upgrade(deps: CollectDeps, args: argparse.Namespace) -> int:
    report = await upgrade(deps, batch=args.batch)
    out(report.line())
    return 0 if report.conflicts == 0 else 1
