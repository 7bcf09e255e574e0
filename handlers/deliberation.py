"""说事议事 in app chat: 议题 … / 举手表决 … / 抓阄 … (grammar in deliberation/grammar.py).

    议题（换行）村：…（换行）标题：…       open a matter (officer or appointed organiser)
    议题 进度 YT3 / 议题 结束 YT3           turnout while open, result once closed / close now
    议题 延期 YT3 2天 / 议题 撤销 YT3 原因   a later closing time / withdraw (audited, announced)
    议题 组织者 <userid> 村：…              the officer appoints an organiser
    议题 回执 <回执>                        check a ballot receipt after the result
    举手表决 YT3 到会 45 同意 40 …          a grid worker records a show of hands
    抓阄（换行）村：…（换行）标题：…（换行）物品：1-28号地块   fix and publish a draw
    抓阄 揭示 / 公开值 / 开抽 ZJ2 …         reveal a commitment, enter the public value, draw
    微信客服: 表决 <身份证后6位> <手机后4位>  a resident gets their own link (deliberation.kf)
"""

from __future__ import annotations

import re

from bot.context import Context
from bot.events import KfMessage, TextMessage
from bot.filters import Command
from bot.router import Router
from cases.deps import CasesDeps
from deliberation import kf, texts
from deliberation.deps import DelibDeps
from deliberation.draws import DrawService
from deliberation.grammar import (
    GrammarError,
    parse_draw,
    parse_hands,
    parse_matter,
    parse_time,
)
from deliberation.service import MatterService, Reply

router = Router(name=__name__)
STAFF = ("officer", "grid_worker")
router.describe("议题（换行）村：…（换行）标题：… — 发起说事议事表决；议题 进度/结束 编号",
                "officer")
router.describe("举手表决 编号 到会 人数 同意 人数 … — 登记会上举手表决结果", *STAFF)
router.describe("抓阄（换行）村：…（换行）标题：…（换行）物品：1-28号地块 — 公开抓阄；"
                "抓阄 开抽 编号", "officer")

MATTER, HANDS, DRAW = Command("议题"), Command("举手表决"), Command("抓阄")


def _deps(ctx: Context) -> DelibDeps:
    return DelibDeps.from_context(ctx)


async def _answer(ctx: Context, event: TextMessage, reply: Reply | str) -> None:
    text = reply if isinstance(reply, str) else reply.text
    await ctx.reply(event.sender, texts.fit(text))


@router.message(MATTER)
async def on_matter(event: TextMessage, ctx: Context) -> None:
    """议题 …: open, 进度, 结束, 组织者, 回执."""
    await _answer(ctx, event, await _matter_command(event, ctx))


async def _matter_command(event: TextMessage, ctx: Context) -> Reply | str:
    args = MATTER.args(event)
    word, _, rest = args.partition(" ")
    service = MatterService(_deps(ctx))
    sender, source = event.sender, ctx.source
    if word == "进度":
        return await service.status(sender, rest, source=source)
    if word == "结束":
        return await service.close(sender, rest, source=source)
    if word == "延期":
        matter_id, _, when = rest.partition(" ")
        try:
            matter = await service.deps.matters.get(matter_id.upper())
            base = matter.closes_at if matter else ctx.clock.now()
            closes = parse_time(when, ctx.clock.now(), base=base)
        except GrammarError as error:
            return str(error)
        return await service.extend(sender, matter_id, closes, source=source)
    if word == "撤销":
        matter_id, _, reason = rest.partition(" ")
        return await service.cancel(sender, matter_id, reason, source=source)
    if word == "回执":
        return (await service.check_receipt(rest)).message
    if word == "组织者":
        userid = rest.split()[0] if rest.split() else ""
        village = re.search(r"村[：:]\s*(\S+)", rest)
        return await service.appoint(sender, village.group(1) if village else "", userid,
                                     source=source)
    try:
        draft = parse_matter(args, ctx.clock.now())
    except GrammarError as error:
        return str(error)
    return await service.open(sender, draft, source=source)


@router.message(HANDS)
async def on_hands(event: TextMessage, ctx: Context) -> None:
    """举手表决 YT3 到会 45 同意 40 不同意 3 弃权 2."""
    await _answer(ctx, event, await _hands_command(event, ctx))


async def _hands_command(event: TextMessage, ctx: Context) -> Reply | str:
    service = MatterService(_deps(ctx))
    try:
        matter_id, present, named = parse_hands(HANDS.args(event))
    except GrammarError as error:
        return str(error)
    matter = await service.deps.matters.get(matter_id.upper())
    if matter is None:
        return f"没有议题 {matter_id}：请核对编号（如 YT3）"
    unknown = sorted(set(named) - set(matter.options))
    if unknown:
        return (f"举手结果：没有选项「{'、'.join(unknown)}」，"
                f"本议题的选项是 {'、'.join(matter.options)}")
    counts = tuple(named.get(option, 0) for option in matter.options)
    return await service.record_hands(event.sender, matter.id, present, counts,
                                      source=ctx.source)


@router.message(DRAW)
async def on_draw(event: TextMessage, ctx: Context) -> None:
    """抓阄 …: create, 揭示, 公开值, 开抽."""
    await _answer(ctx, event, await _draw_command(event, ctx))


async def _draw_command(event: TextMessage, ctx: Context) -> Reply | str:
    args = DRAW.args(event)
    parts = args.split(maxsplit=2)
    service = DrawService(_deps(ctx))
    sender, source = event.sender, ctx.source
    if parts and parts[0] in ("揭示", "公开值") and len(parts) == 3:
        run = service.reveal if parts[0] == "揭示" else service.public_value
        return await run(sender, parts[1], parts[2], source=source)
    if parts and parts[0] == "开抽" and len(parts) >= 2:
        return await service.run(sender, parts[1], source=source)
    try:
        draft = parse_draw(args)
    except GrammarError as error:
        return str(error)
    return await service.create(sender, draft, source=source)


@router.on(KfMessage, kf.asks_for_link)
async def on_resident_asks(event: KfMessage, ctx: Context) -> None:
    """A resident in 微信客服: 表决 … (before cases, which would make it a case)."""
    await kf.answer(_deps(ctx), CasesDeps.from_context(ctx), event)
