"""What collect/'s services share: connections, keys, the cipher, the registry, the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from bot.audit import AuditLog, Outcome
from bot.clock import Clock
from bot.keys import Keys
from bot.settings import Settings
from collect.access import Access, Actor
from collect.crypto import BlindIndex, FieldCipher
from collect.keys import CollectKeys
from collect.store import RecordStore
from registry.store import Registry

if TYPE_CHECKING:
    from bot.context import Context


@dataclass(frozen=True, slots=True)
class CollectDeps:
    redis: aioredis.Redis
    keys: CollectKeys
    clock: Clock
    settings: Settings
    registry: Registry
    audit: AuditLog
    store: RecordStore
    cipher: FieldCipher
    blind: BlindIndex
    access: Access

    @classmethod
    def build(cls, redis: aioredis.Redis, keys: Keys, clock: Clock, settings: Settings,
              registry: Registry, audit: AuditLog) -> CollectDeps:
        """Raises bot.settings.SettingsError when the field or blind-index keys are missing."""
        collect_keys = CollectKeys(keys)
        return cls(redis, collect_keys, clock, settings, registry, audit,
                   RecordStore(redis, collect_keys), FieldCipher.from_settings(settings.security),
                   BlindIndex.from_settings(settings.security), Access(registry))

    @classmethod
    def from_context(cls, ctx: Context) -> CollectDeps:
        return cls.build(ctx.redis, ctx.keys, ctx.clock, ctx.settings, ctx.registry, ctx.audit)

    def now(self) -> float:
        return self.clock.now()

    async def record_audit(self, actor: Actor | str, action: str, outcome: Outcome, *,
                           target: str = "", detail: str = "", source: str = "") -> None:
        who = actor.label if isinstance(actor, Actor) else actor
        await self.audit.record(who, action, outcome, target=target, detail=detail, source=source)
