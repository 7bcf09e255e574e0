"""`gridbot cases …`: the officers' commands, the 客服 link of a node, and the assessment.

    gridbot cases list --as USERID                   我的事件 (overdue first)
    gridbot cases overdue --as USERID                超时事件 (supervisors)
    gridbot cases show E12 --as USERID               事件 E12 (timeline)
    gridbot cases accept|arrive E12 --as USERID
    gridbot cases answer E12 内容 --as USERID  ·  close E12 结果  ·  transfer E12 账号|调解
    gridbot cases link NODE [--qr FILE.png]          客服 link with the node as scene + QR code
    gridbot cases assess --from 2026-11-01 --to 2026-12-01 --level 乡镇街道 [--under CODE]
                         [--csv FILE] [--xlsx FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import segno

from bot.audit import CONSOLE_SOURCE, AuditLog
from bot.clock import make_clock
from bot.keys import Keys
from bot.redis import connect, redis_url_for
from bot.settings import Settings, load_settings
from bot.wecom.client import WeComClient
from bot.wecom.errors import WeComError
from cases import notify, texts
from cases.assess import HEADERS, Assessment, assess, write_csv, write_xlsx
from cases.deps import CasesDeps
from cases.service import BadInput, CaseService, Refused
from registry.models import LEVEL_LABELS, Level
from registry.store import Registry

Work = Callable[[CasesDeps, argparse.Namespace], Awaitable[int]]
LEVELS = {label: level for level, label in LEVEL_LABELS.items()} | {lv.value: lv for lv in Level}


def out(text: str) -> None:
    sys.stdout.write(text + "\n")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("cases", help="事件：处理、客服链接、考核")
    sub = parser.add_subparsers(dest="cases_command", required=True, metavar="子命令")
    for name, help_, extra in (("list", "我的事件（超时在前）", ()),
                               ("overdue", "超时未接单的事件（负责人）", ()),
                               ("show", "查看事件经过", ("case",)),
                               ("accept", "接单", ("case",)), ("arrive", "到场", ("case",)),
                               ("answer", "答复上报人", ("case", "text")),
                               ("close", "办结", ("case", "text")),
                               ("transfer", "转交（账号或 调解）", ("case", "text"))):
        p = sub.add_parser(name, help=help_)
        for arg in extra:
            p.add_argument(arg, nargs="+" if arg == "text" else None)
        p.add_argument("--as", dest="actor", required=True,
                       help="操作人的企业微信 userid；不做身份验证，"
                            "审计记为服务器控制台操作 cli:console")
        p.set_defaults(func=_command(_act, wecom=True))
    p = sub.add_parser("link", help="生成节点的微信客服链接和二维码")
    p.add_argument("node", help="节点编码（网格或村社区）")
    p.add_argument("--qr", type=Path, default=None, help="二维码 PNG 文件（默认 客服-节点.png）")
    p.set_defaults(func=_command(_link, wecom=True))
    p = sub.add_parser("assess", help="考核：响应率、及时办结率、解决率、满意率")
    p.add_argument("--from", dest="start", required=True, help="起始日期 YYYY-MM-DD（含）")
    p.add_argument("--to", dest="end", required=True, help="截止日期 YYYY-MM-DD（不含）")
    p.add_argument("--level", default="乡镇街道", help="按哪一级统计：县区/乡镇街道/村社区/网格")
    p.add_argument("--under", default="", help="只统计该节点以下")
    p.add_argument("--csv", type=Path, default=None)
    p.add_argument("--xlsx", type=Path, default=None)
    p.set_defaults(func=_command(_assess, wecom=False))


def _command(work: Work, *, wecom: bool) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        settings = load_settings(args.settings)
        with redis_url_for(settings.redis.url, settings.redis.data_dir) as url:
            return asyncio.run(_with_deps(url, settings, args, work, wecom))

    return run


async def _with_deps(url: str, settings: Settings, args: argparse.Namespace, work: Work,
                     wecom: bool) -> int:
    redis = connect(url)
    keys = Keys(settings.redis.prefix)
    clock = make_clock(settings.clock.speed, settings.clock.origin)
    try:
        async with aiohttp.ClientSession() as session:
            client = WeComClient(session, settings.wecom, redis, keys, clock) if wecom else None
            audit = AuditLog(redis, keys, clock, settings.security.audit_retention_days)
            registry = Registry(redis, keys, clock)
            deps = CasesDeps.build(redis, keys, clock, settings, registry, audit, client)
            return await work(deps, args)
    finally:
        await redis.aclose()


async def _act(deps: CasesDeps, args: argparse.Namespace) -> int:
    svc = CaseService(deps, source=CONSOLE_SOURCE)
    text = " ".join(getattr(args, "text", None) or [])
    command, actor = args.cases_command, args.actor
    try:
        if command in ("list", "overdue"):
            cases = await (svc.queue(actor) if command == "list" else svc.overdue(actor))
            out("\n".join(texts.queue_lines(cases, deps.now())) or "没有事件。")
        elif command == "show":
            view = await svc.view(actor, args.case)
            c = view.case
            people = await notify.names(deps, {c.handler, *c.officers, *c.escalated_to,
                                               *(e.actor for e in view.timeline)})
            out(texts.view_text(view, people))
        elif command == "accept":
            out(f"已接单 {texts.head(await svc.accept(actor, args.case))}")
        elif command == "arrive":
            out(f"已到场 {texts.head(await svc.arrive(actor, args.case))}")
        elif command == "answer":
            out(f"已答复 {texts.head(await svc.answer(actor, args.case, text))}")
        elif command == "close":
            out(f"已办结 {texts.head(await svc.close(actor, args.case, text))}")
        else:
            out(f"已转交 {texts.head(await svc.transfer(actor, args.case, text))}")
    except Refused as error:
        out(f"拒绝：{error}（已记录）")
        return 3
    except BadInput as error:
        out(str(error))
        return 2
    return 0


async def kf_link(deps: CasesDeps, node_code: str, qr: Path | None) -> tuple[str, Path]:
    """The 客服 link whose enter_session carries the node, and its QR code written as PNG."""
    assert deps.wecom is not None
    open_kfid = deps.config.open_kfid
    if not open_kfid:
        accounts = [a for a in await deps.wecom.kf_account_list() if a.manage_privilege]
        if not accounts:
            raise BadInput("没有可由本应用管理的微信客服账号：请在管理后台把客服账号交给本应用，"
                           "或设置 cases.open_kfid")
        open_kfid = accounts[0].open_kfid
    url = await deps.wecom.kf_add_contact_way(open_kfid, node_code)
    path = qr or Path(f"客服-{node_code}.png")
    segno.make(url, error="m").save(str(path), scale=8, border=4)
    return url, path


async def _link(deps: CasesDeps, args: argparse.Namespace) -> int:
    node = await deps.registry.node(args.node)
    if node is None:
        out(f"节点 {args.node} 不存在，请用 gridbot tree 查看编码。")
        return 2
    try:
        url, path = await kf_link(deps, node.code, args.qr)
    except (BadInput, WeComError, ValueError) as error:
        out(f"生成失败：{error}")
        return 2
    out(f"{node.name}（{node.code}）的微信客服链接：\n{url}\n二维码已保存：{path}")
    return 0


def _day(text: str) -> float:
    day = dt.date.fromisoformat(text)
    return dt.datetime.combine(day, dt.time(0, 0), texts.CHINA_TZ).timestamp()


async def _assess(deps: CasesDeps, args: argparse.Namespace) -> int:
    level = LEVELS.get(args.level)
    try:
        start, end = _day(args.start), _day(args.end)
    except ValueError:
        out("日期应写成 YYYY-MM-DD，如 --from 2026-11-01 --to 2026-12-01")
        return 2
    if level is None:
        out("--level 应为 县区、乡镇街道、村社区 或 网格")
        return 2
    result = await assess(deps, start=start, end=end, level=level, under=args.under or None)
    out(table(result))
    if args.csv:
        write_csv(result, args.csv)
        out(f"CSV 已保存：{args.csv}")
    if args.xlsx:
        write_xlsx(result, args.xlsx)
        out(f"XLSX 已保存：{args.xlsx}")
    return 0


def table(result: Assessment) -> str:
    lines = [" | ".join(HEADERS)]
    lines += [" | ".join(str(c) for c in r.cells()) for r in result.by_node]
    lines += ["", "按民警：", " | ".join(HEADERS)]
    lines += [" | ".join(str(c) for c in r.cells()) for r in result.by_officer]
    return "\n".join(lines)
