"""The last router: unknown input gets a short hint (never silence); other events are logged."""

from __future__ import annotations

import logging

from bot.context import Context
from bot.events import Event, ImageMessage, LocationMessage, OtherMessage, TextMessage
from bot.router import Router

log = logging.getLogger(__name__)
router = Router(name=__name__)

UNKNOWN_TEXT = "没有识别到命令。发送「帮助」查看您可以使用的命令。"
UNSUPPORTED = "暂时只能处理文字消息。发送「帮助」查看您可以使用的命令。"


@router.message()
async def handle_unknown_text(event: TextMessage, ctx: Context) -> None:
    """Any text no other router took."""
    await ctx.reply(event.sender, UNKNOWN_TEXT)


def _unreadable(event: Event) -> bool:
    return isinstance(event, (OtherMessage, ImageMessage, LocationMessage))


@router.on(Event, _unreadable)
async def handle_unsupported(event: Event, ctx: Context) -> None:
    """Images, voice, locations no other router took: say what the bot can read."""
    await ctx.reply(event.sender, UNSUPPORTED)


@router.on(Event)
async def handle_other_event(event: Event, ctx: Context) -> None:
    """Events nobody handles (enter_agent, contact changes …): logged, no reply."""
    log.debug("未处理的事件 %s %s", event.kind, event.dedupe_key)
