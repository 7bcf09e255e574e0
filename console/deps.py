"""The services one console process uses, built once at start-up from the app's services."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bot import appkeys
from bot.audit import AuditLog
from bot.clock import Clock
from bot.settings import Settings
from bot.wecom.client import WeComClient
from broadcasts.deps import Runtime
from broadcasts.schedule import bound_scheduling
from broadcasts.service import BroadcastService
from collect.deps import CollectDeps
from console.keys import ConsoleKeys
from console.sessions import SessionStore
from registry.store import Registry


@dataclass(frozen=True, slots=True)
class ConsoleDeps:
    settings: Settings
    clock: Clock
    wecom: WeComClient
    registry: Registry
    audit: AuditLog
    rt: Runtime
    collect: CollectDeps
    sessions: SessionStore

    @classmethod
    def from_app(cls, app: web.Application) -> ConsoleDeps:
        settings = app[appkeys.settings]
        redis, keys, clock = app[appkeys.redis], app[appkeys.keys], app[appkeys.clock]
        registry, audit = app[appkeys.registry], app[appkeys.audit]
        console = settings.console
        return cls(
            settings=settings, clock=clock, wecom=app[appkeys.wecom], registry=registry,
            audit=audit,
            rt=Runtime.build(settings, redis, keys, clock, app[appkeys.wecom], registry, audit),
            collect=CollectDeps.build(redis, keys, clock, settings, registry, audit),
            sessions=SessionStore(redis, ConsoleKeys(keys), idle_seconds=console.idle_minutes * 60,
                                  max_seconds=console.max_hours * 3600),
        )

    def broadcasts(self) -> BroadcastService:
        """The notice service, with the app's scheduler for 定时 when there is one."""
        return BroadcastService(self.rt, bound_scheduling())
