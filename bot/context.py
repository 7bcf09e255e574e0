"""What a handler may use: one typed, frozen context per event (no name-based injection)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from bot.audit import AuditLog
from bot.clock import Clock
from bot.help import HelpSource
from bot.keys import Keys
from bot.masking import scrub
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.wecom.client import WeComClient
    from registry.store import Registry


@dataclass(frozen=True, slots=True)
class Context:
    """Services shared by all handlers, plus the id of the event being handled."""

    settings: Settings
    redis: aioredis.Redis
    keys: Keys
    clock: Clock
    wecom: WeComClient
    audit: AuditLog
    registry: Registry
    routers: tuple[HelpSource, ...] = ()  # for 帮助
    source: str = ""  # dedupe key of the event being handled, for the audit trail

    async def reply(self, userid: str, text: str) -> None:
        """Send `text` to `userid` as a 1:1 app message; personal numbers are always masked."""
        await self.wecom.send_text(userid, scrub(text))
