"""Helpers for the foundation tests: a fixed clock, a recording router, polling, the CLI."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from bot.clock import Clock
from bot.context import Context
from bot.events import Event, TextMessage, event_from_json
from bot.router import Router
from bot.settings import Settings
from bot.wecom.crypto import WeComCrypto

SEEN = "test:seen"  # Redis list the recording router appends to
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class FixedClock(Clock):
    """Simulated time stuck at `at` (the crypto vectors carry timestamps from 2014–2016)."""

    at: float = 0.0

    def now(self) -> float:
        return self.at


def recording_router(*, reply: bool = False) -> Router:
    """A router that appends every event to the Redis list SEEN (and optionally answers)."""
    router = Router("test-recorder")

    @router.on(Event)
    async def record(event: Event, ctx: Context) -> None:
        await ctx.redis.rpush(SEEN, event.to_json())  # type: ignore[misc]
        if reply and isinstance(event, TextMessage):
            await ctx.reply(event.sender, f"已收到：{event.text}")

    return router


async def seen_events(redis: aioredis.Redis) -> list[Event]:
    """Events the recording router saw, in order."""
    raw = await redis.lrange(SEEN, 0, -1)  # type: ignore[misc]
    return [event_from_json(item) for item in raw]


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0,
                     what: str = "condition") -> None:
    """Poll `check` until it is true; AssertionError after `timeout` real seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def gridbot_env(env: dict[str, str]) -> dict[str, str]:
    """Environment for a `gridbot` subprocess: the test's settings, nothing from the shell."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("GRIDBOT_")}
    return {**keep, **env}


def gridbot_command(*args: str) -> list[str]:
    """argv running the installed `gridbot` console script of this virtualenv."""
    script = Path(sys.executable).with_name("gridbot")
    return [str(script), *args]


def text_xml(corp_id: str, sender: str, content: str, msg_id: str, at: int,
             agent_id: int = 1000002) -> str:
    """A plaintext text-message callback as WeCom sends it."""
    return (f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName>"
            f"<FromUserName><![CDATA[{sender}]]></FromUserName><CreateTime>{at}</CreateTime>"
            f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
            f"<MsgId>{msg_id}</MsgId><AgentID>{agent_id}</AgentID></xml>")


def sealed_post(crypto: WeComCrypto, xml: str, at: int, agent_id: int = 1000002
                ) -> tuple[dict[str, str], bytes]:
    """(query, body) of a callback POST carrying `xml`, as WeCom would send it."""
    sealed = crypto.encrypt(xml, timestamp=at)
    return sealed.query(), crypto.callback_body(sealed, agent_id)


def crypto_for(settings: Settings, corp_id: str | None = None) -> WeComCrypto:
    """The callback crypto of `settings` (optionally claiming another corp id)."""
    wecom = settings.wecom
    return WeComCrypto(wecom.token.get_secret_value(), wecom.encoding_aes_key.get_secret_value(),
                       corp_id or wecom.corp_id)
