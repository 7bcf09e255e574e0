"""一标三实 in app chat: templates, the guided flow, corrections, review, to-do, campaigns.

    采集 人口 / 房屋 / 单位 / 地址 + lines `项目：内容`   (template; no lines: guided flow)
    采集 | 引导采集 人口                               (guided, one question at a time)
    更正 P12 电话：…  ·  搬离 P12 原因  ·  注销 H3 原因
    核查 P12 通过 | 核查 P12 退回 原因  ·  我的待办  ·  查询 P12|身份证号
    发起采集 <节点> [截止 YYYY-MM-DD]  ·  采集进度 C1
    确认保存 / 确认无误 (a held submission)  ·  取消

The last route intercepts the worker's answers while a guided flow (or a held submission)
is waiting and raises SkipHandler otherwise, so 帮助 and the fallback still see the rest.
The work is done by collect/; this module only parses, dispatches and replies.
"""

from __future__ import annotations

import datetime as dt
import logging

from bot.context import Context
from bot.events import TextMessage
from bot.filters import Command, text_equals
from bot.router import Router, SkipHandler
from bot.settings import SettingsError
from collect import campaign_chat, chat, pending
from collect.deps import CollectDeps
from collect.flow import CANCEL_WORDS, GuidedFlow
from collect.results import CONFIRM_CHECKSUM, CONFIRM_SAVE
from collect.validate import CHINA_TZ
from registry.models import Role

log = logging.getLogger(__name__)
router = Router(name=__name__)

COLLECT = Command("采集")
GUIDED = Command("引导采集")
CORRECT = Command("更正")
MOVE_OUT = Command("搬离")
CANCEL_RECORD = Command("注销")
REVIEW = Command("核查")
TODO = Command("我的待办", "待办")
LOOKUP = Command("查询")
CAMPAIGN = Command("发起采集")
PROGRESS = Command("采集进度")
CONFIRM_WORDS = {CONFIRM_SAVE: CONFIRM_SAVE, "确认 保存": CONFIRM_SAVE,
                 CONFIRM_CHECKSUM: CONFIRM_CHECKSUM, "确认 无误": CONFIRM_CHECKSUM}
PASS_THROUGH = frozenset({"帮助", "help", "菜单", "?", "？"})  # other routers' words, not answers
NOT_CONFIGURED = "系统尚未配置加密密钥，暂时不能采集或查询，请联系管理员。"

STAFF = (Role.GRID_WORKER.value, Role.OFFICER.value, Role.AUXILIARY.value)
POLICE = (Role.OFFICER.value, Role.AUXILIARY.value)
router.describe("采集 人口｜房屋｜单位｜地址 + 每行 项目：内容"
                "（如 姓名：… 身份证：… 电话：… 地址：…）", *STAFF)
router.describe("采集 或 引导采集 人口：逐项引导填写，回复 取消 退出", *STAFF)
router.describe("更正 编号 项目：新内容（可加 原因：…）；搬离 编号 原因；注销 编号 原因", *STAFF)
router.describe("我的待办：本区域待核查、退回和居民自主申报的记录", *STAFF)
router.describe("核查 编号 通过｜核查 编号 退回 原因", *POLICE)
router.describe("查询 编号或身份证号：查看辖区内记录（留痕）", Role.OFFICER.value)
router.describe("发起采集 节点 [截止 2026-12-31]；采集进度 C编号", Role.OFFICER.value)


def _deps(ctx: Context, *, quiet: bool = False) -> CollectDeps | None:
    try:
        return CollectDeps.from_context(ctx)
    except SettingsError as error:
        if not quiet:  # the catch-all route sees every message: one complaint per command
            log.error("collect: %s", error)
        return None


async def _say(ctx: Context, userid: str, text: str) -> None:
    # WeCom drops a repeated identical message within 30 min (duplicate check): a worker who
    # sends the same thing twice must still get an answer, so every reply carries its time
    stamp = dt.datetime.fromtimestamp(ctx.clock.now(), CHINA_TZ).strftime("%H:%M:%S")
    await ctx.reply(userid, f"{text}\n（{stamp}）")


def _source(ctx: Context) -> str:
    return f"chat:{ctx.source}" if ctx.source else "chat"


async def _run(event: TextMessage, ctx: Context, action: chat.Action, args: str) -> None:
    deps = _deps(ctx)
    text = await action(deps, event.sender, args, _source(ctx)) if deps else NOT_CONFIGURED
    await _say(ctx, event.sender, text)


@router.message(GUIDED)
async def handle_guided(event: TextMessage, ctx: Context) -> None:
    await _run(event, ctx, chat.start_guided, GUIDED.args(event))


@router.message(COLLECT)
async def handle_collect(event: TextMessage, ctx: Context) -> None:
    await _run(event, ctx, chat.collect, COLLECT.args(event))


@router.message(CORRECT)
async def handle_correct(event: TextMessage, ctx: Context) -> None:
    await _run(event, ctx, chat.correct, CORRECT.args(event))


@router.message(MOVE_OUT)
async def handle_move_out(event: TextMessage, ctx: Context) -> None:
    await _run(event, ctx, chat.move_out, MOVE_OUT.args(event))


@router.message(CANCEL_RECORD)
async def handle_cancel_record(event: TextMessage, ctx: Context) -> None:
    await _run(event, ctx, chat.cancel_record, CANCEL_RECORD.args(event))


@router.message(REVIEW)
async def handle_review(event: TextMessage, ctx: Context) -> None:
    await _run(event, ctx, chat.review, REVIEW.args(event))


@router.message(TODO)
async def handle_todo(event: TextMessage, ctx: Context) -> None:
    await _run(event, ctx, chat.todo, TODO.args(event))


@router.message(LOOKUP)
async def handle_lookup(event: TextMessage, ctx: Context) -> None:
    await _run(event, ctx, chat.lookup, LOOKUP.args(event))


@router.message(CAMPAIGN)
async def handle_campaign(event: TextMessage, ctx: Context) -> None:
    deps = _deps(ctx)
    if deps is None:
        await _say(ctx, event.sender, NOT_CONFIGURED)
        return
    reply, notices = await campaign_chat.open_campaign(deps, event.sender, CAMPAIGN.args(event),
                                              _source(ctx))
    for userid, text in notices:
        await ctx.reply(userid, text)
    await _say(ctx, event.sender, reply)


@router.message(PROGRESS)
async def handle_progress(event: TextMessage, ctx: Context) -> None:
    await _run(event, ctx, chat.progress, PROGRESS.args(event))


@router.message(text_equals(*CONFIRM_WORDS))
async def handle_confirm(event: TextMessage, ctx: Context) -> None:
    deps = _deps(ctx)
    reply = await pending.confirm(deps, event.sender, CONFIRM_WORDS[event.text], _source(ctx)
                                  ) if deps else None
    if reply is None:
        raise SkipHandler
    await _say(ctx, event.sender, reply)


@router.message()
async def handle_session_reply(event: TextMessage, ctx: Context) -> None:
    """A worker's answer inside a guided flow, or 取消 of a held submission; else skip."""
    deps = _deps(ctx, quiet=True)
    if deps is None or event.text.lower() in PASS_THROUGH:
        raise SkipHandler
    reply = await GuidedFlow(deps).answer(event.sender, event.text, _source(ctx))
    if reply is None and event.text in CANCEL_WORDS and await pending.cancel(deps, event.sender):
        reply = "已放弃保存。"
    if reply is None:
        raise SkipHandler
    await _say(ctx, event.sender, reply)
