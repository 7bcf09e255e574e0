"""Every typed key of the aiohttp application (web.AppKey), in one place.

Other packages define their own AppKeys next to their cleanup contexts (added through
create_app's `extra_contexts` / `extensions`) and reach these through `app[appkeys.x]`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from bot.audit import AuditLog
from bot.clock import Clock
from bot.health import Health
from bot.keys import Keys
from bot.settings import Settings
from bot.wecom.client import WeComClient
from bot.wecom.crypto import WeComCrypto

if TYPE_CHECKING:
    from bot.inbox import Inbox, InboxConsumer
    from bot.router import Router
    from bot.scheduler import Scheduler
    from registry.store import Registry

settings = web.AppKey("settings", Settings)
clock = web.AppKey("clock", Clock)
keys = web.AppKey("keys", Keys)
health = web.AppKey("health", Health)
routers: web.AppKey[tuple[Router, ...]] = web.AppKey("routers")
crypto = web.AppKey("crypto", WeComCrypto)
redis = web.AppKey("redis", aioredis.Redis)
http = web.AppKey("http", aiohttp.ClientSession)
wecom = web.AppKey("wecom", WeComClient)
registry: web.AppKey[Registry] = web.AppKey("registry")
audit = web.AppKey("audit", AuditLog)
inbox: web.AppKey[Inbox] = web.AppKey("inbox")
consumer: web.AppKey[InboxConsumer] = web.AppKey("consumer")
scheduler: web.AppKey[Scheduler] = web.AppKey("scheduler")
