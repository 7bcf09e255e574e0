"""Police notices in app chat: 通知 / 确认 / 批准 / 取消 / 进度 / 更新 / 撤回 / 已破案 / 已转达.

The grammar is in broadcasts/grammar.py; who may do what, the audit trail and the delivery
engine are in broadcasts/. Commands that need a notice number pass (SkipHandler) when none is
given, so other features' flows may use the same words.
"""

from __future__ import annotations

from bot.context import Context
from bot.events import TextMessage
from bot.filters import Command
from bot.router import Router, SkipHandler
from broadcasts.deps import Runtime
from broadcasts.grammar import FOLLOW_WORDS, LEVEL_WORDS, USAGE, GrammarError, parse_notice_id
from broadcasts.schedule import bound_scheduling
from broadcasts.service import BroadcastService, Reply

router = Router(name=__name__)
POLICE = ("officer", "auxiliary")
router.describe(f"{USAGE} — 发布警务通知（超过 20 个群先预览）", "officer")
router.describe("确认 <编号> / 取消 <编号> — 确认发送或作废您预览中的通知", "officer")
router.describe("批准 <编号> — 批准另一位民警的全市协查通报", "officer")
router.describe("更新 / 撤回 / 已破案 <编号> 内容 — 发到原通知送达的全部群", "officer")
router.describe("进度 [编号] — 查看通知送达进度（按辖区汇总）", *POLICE)
router.describe("已转达 <编号> — 告知民警您已转达通知", "grid_worker")

ISSUE = Command("通知", "发布通知", "发通知", "定时", *(w for w in LEVEL_WORDS if len(w) == 4))
FOLLOW = Command(*FOLLOW_WORDS)
CONFIRM, APPROVE, CANCEL = Command("确认"), Command("批准"), Command("取消")
PROGRESS, ACK = Command("进度"), Command("已转达")


def service(ctx: Context) -> BroadcastService:
    rt = Runtime.build(ctx.settings, ctx.redis, ctx.keys, ctx.clock, ctx.wecom, ctx.registry,
                       ctx.audit)
    return BroadcastService(rt, bound_scheduling())


async def answer(ctx: Context, event: TextMessage, reply: Reply) -> None:
    await ctx.reply(event.sender, reply.text)


@router.message(ISSUE)
async def on_issue(event: TextMessage, ctx: Context) -> None:
    """通知 / 紧急预警 / 定时 …: plan, preview or send."""
    word = ISSUE.match(event.text) or ""
    args = ISSUE.args(event)
    text = f"定时 {args}" if word == "定时" else args
    level = word if word in LEVEL_WORDS else ""
    await answer(ctx, event, await service(ctx).issue_text(event.sender, text, level_word=level,
                                                           source=ctx.source))


@router.message(FOLLOW)
async def on_follow_up(event: TextMessage, ctx: Context) -> None:
    """更新 / 撤回 / 已破案 <编号> 内容."""
    word = FOLLOW.match(event.text) or ""
    await answer(ctx, event, await service(ctx).follow_up_text(
        event.sender, word, FOLLOW.args(event), source=ctx.source))


def _notice_id(command: Command, event: TextMessage, *, optional: bool = False) -> int | None:
    args = command.args(event)
    if not args and optional:
        return None
    try:
        return parse_notice_id(args, command.match(event.text) or "")
    except GrammarError:
        raise SkipHandler from None  # not ours: e.g. 确认 inside a collection flow


@router.message(CONFIRM)
async def on_confirm(event: TextMessage, ctx: Context) -> None:
    """确认 <编号>."""
    nid = _notice_id(CONFIRM, event)
    assert nid is not None
    await answer(ctx, event, await service(ctx).confirm(event.sender, nid, source=ctx.source))


@router.message(APPROVE)
async def on_approve(event: TextMessage, ctx: Context) -> None:
    """批准 <编号>."""
    nid = _notice_id(APPROVE, event)
    assert nid is not None
    await answer(ctx, event, await service(ctx).approve(event.sender, nid, source=ctx.source))


@router.message(CANCEL)
async def on_cancel(event: TextMessage, ctx: Context) -> None:
    """取消 <编号>."""
    nid = _notice_id(CANCEL, event)
    assert nid is not None
    await answer(ctx, event, await service(ctx).cancel(event.sender, nid, source=ctx.source))


@router.message(PROGRESS)
async def on_progress(event: TextMessage, ctx: Context) -> None:
    """进度 [编号] (default: the sender's latest notice)."""
    nid = _notice_id(PROGRESS, event, optional=True)
    await answer(ctx, event, await service(ctx).progress(event.sender, nid, source=ctx.source))


@router.message(ACK)
async def on_ack(event: TextMessage, ctx: Context) -> None:
    """已转达 <编号>."""
    nid = _notice_id(ACK, event)
    assert nid is not None
    await answer(ctx, event, await service(ctx).acknowledge(event.sender, nid,
                                                            source=ctx.source))
