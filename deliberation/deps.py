"""The services one process uses for deliberation/, built once (serve, CLI, tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from bot.audit import AuditLog, Outcome
from bot.clock import Clock
from bot.keys import Keys
from bot.settings import Settings
from bot.wecom.client import WeComClient
from collect.deps import CollectDeps
from deliberation.keys import DelibKeys
from deliberation.store import DrawStore, MatterStore
from registry.store import Registry

if TYPE_CHECKING:
    from bot.context import Context


@dataclass(frozen=True, slots=True)
class DelibDeps:
    redis: aioredis.Redis
    base_keys: Keys
    keys: DelibKeys
    clock: Clock
    settings: Settings
    registry: Registry
    audit: AuditLog
    wecom: WeComClient | None
    collect: CollectDeps
    matters: MatterStore
    draws: DrawStore
    link_key: bytes

    @classmethod
    def build(cls, redis: aioredis.Redis, keys: Keys, clock: Clock, settings: Settings,
              registry: Registry, audit: AuditLog, wecom: WeComClient | None) -> DelibDeps:
        collect = CollectDeps.build(redis, keys, clock, settings, registry, audit)
        dkeys = DelibKeys(keys)
        return cls(redis, keys, dkeys, clock, settings, registry, audit, wecom, collect,
                   MatterStore(redis, dkeys), DrawStore(redis, dkeys),
                   collect.blind.subkey("deliberation-links"))

    @classmethod
    def from_context(cls, ctx: Context) -> DelibDeps:
        return cls.build(ctx.redis, ctx.keys, ctx.clock, ctx.settings, ctx.registry, ctx.audit,
                         ctx.wecom)

    def now(self) -> float:
        return self.clock.now()

    def base_url(self) -> str:
        server = self.settings.server
        return (server.public_url or f"http://{server.host}:{server.port}").rstrip("/")

    async def record(self, actor: str, action: str, outcome: Outcome, *, target: str = "",
                     detail: str = "", source: str = "") -> None:
        await self.audit.record(actor, action, outcome, target=target, detail=detail,
                                source=source)
