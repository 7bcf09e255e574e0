"""Router and filters: order, first match wins, SkipHandler passes on, commands parse."""

from __future__ import annotations

from typing import Any

from bot.context import Context
from bot.events import ExternalChatChange, TextMessage
from bot.filters import Command, chat_change, text_equals
from bot.router import Router, SkipHandler, dispatch


def _text(content: str) -> TextMessage:
    return TextMessage(sender="u1", create_time=1, content=content, msg_id="1")


CTX: Any = None  # the handlers under test do not touch the context


async def test_first_matching_route_wins_in_router_order() -> None:
    seen: list[str] = []
    first, second = Router("a"), Router("b")

    @first.message(Command("进度"))
    async def progress(event: TextMessage, ctx: Context) -> None:
        seen.append("progress")

    @second.message()
    async def anything(event: TextMessage, ctx: Context) -> None:
        seen.append("anything")

    assert await dispatch((first, second), _text("进度 N1"), CTX)
    assert await dispatch((first, second), _text("你好"), CTX)
    assert seen == ["progress", "anything"]


async def test_skip_handler_falls_through() -> None:
    seen: list[str] = []
    router = Router("r")

    @router.message()
    async def session_only(event: TextMessage, ctx: Context) -> None:
        raise SkipHandler

    @router.message()
    async def fallback(event: TextMessage, ctx: Context) -> None:
        seen.append(event.text)

    assert await dispatch((router,), _text("  hi\u3000"), CTX)
    assert seen == ["hi"]


async def test_nothing_matches_returns_false() -> None:
    router = Router("r")

    @router.chat_change(chat_change("dismiss"))
    async def dismissed(event: ExternalChatChange, ctx: Context) -> None:
        raise AssertionError("must not run")

    event = ExternalChatChange(sender="sys", create_time=1, chat_id="wr1", change_type="create")
    assert not await dispatch((router,), event, CTX)
    assert not await dispatch((router,), _text("x"), CTX)


def test_command_matching_and_args() -> None:
    cmd = Command("采集", "采集人口")
    assert cmd(_text("采集 人口\n姓名：张三"))
    assert cmd(_text("采集：人口"))
    assert cmd(_text("采集"))
    assert not cmd(_text("采集员名单"))  # a longer word is not the command
    assert cmd.args(_text("采集：  人口 ")) == "人口"
    assert Command("help")(_text("HELP"))
    assert text_equals("帮助", "help")(_text(" Help "))
