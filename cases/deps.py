"""What cases/' services share, built once per process (serve, worker, CLI, tests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from bot.audit import AuditLog
from bot.clock import Clock
from bot.keys import Keys
from bot.settings import CasesSettings, Settings, SettingsError
from cases.keys import CaseKeys
from cases.store import CaseStore
from collect.crypto import BlindIndex, FieldCipher
from registry.store import Registry

if TYPE_CHECKING:
    from bot.context import Context
    from bot.wecom.client import WeComClient


@dataclass(frozen=True, slots=True)
class CasesDeps:
    redis: aioredis.Redis
    keys: CaseKeys
    clock: Clock
    settings: Settings
    registry: Registry
    audit: AuditLog
    store: CaseStore
    wecom: WeComClient | None  # None: a CLI run without WeCom (nobody is notified)
    cipher: FieldCipher | None  # None: no field keys configured, residents' intake refused
    blind: BlindIndex | None

    @classmethod
    def build(cls, redis: aioredis.Redis, keys: Keys, clock: Clock, settings: Settings,
              registry: Registry, audit: AuditLog, wecom: WeComClient | None) -> CasesDeps:
        case_keys = CaseKeys(keys)
        try:
            cipher: FieldCipher | None = FieldCipher.from_settings(settings.security)
            blind: BlindIndex | None = BlindIndex.from_settings(settings.security)
        except SettingsError:
            cipher, blind = None, None
        return cls(redis, case_keys, clock, settings, registry, audit,
                   CaseStore(redis, case_keys), wecom, cipher, blind)

    @classmethod
    def from_context(cls, ctx: Context) -> CasesDeps:
        return cls.build(ctx.redis, ctx.keys, ctx.clock, ctx.settings, ctx.registry, ctx.audit,
                         ctx.wecom)

    @property
    def config(self) -> CasesSettings:
        return self.settings.cases

    def now(self) -> float:
        return self.clock.now()
