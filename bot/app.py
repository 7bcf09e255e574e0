"""The aiohttp application: callback routes plus the services, started in dependency order.

Cleanup contexts (aiohttp starts them in order and stops them in reverse): redis → http
session → WeComClient → Registry → AuditLog → Inbox → `extra_contexts` (other packages'
services: broadcast engine, workers …) → inbox consumer → scheduler. So the consumer and the
scheduler stop first and Redis closes last. `extensions` are called once with the app at
creation time, after the extra contexts were appended: they may add routes (e.g. an HTTP API)
and append cleanup contexts of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

import aiohttp
from aiohttp import web

from bot import appkeys
from bot.audit import AuditLog
from bot.callback import healthz, receive, verify_url
from bot.clock import Clock, make_clock
from bot.context import Context
from bot.health import Health
from bot.inbox import Inbox, InboxConsumer, inbox_sealer
from bot.keys import Keys
from bot.redis import connect
from bot.router import Router
from bot.scheduler import Scheduler
from bot.settings import Settings
from bot.wecom.client import WeComClient, trace_configs
from bot.wecom.crypto import WeComCrypto

CleanupContext = Callable[[web.Application], AsyncIterator[None]]
Extension = Callable[[web.Application], None]
CONSUMER_STOP_SECONDS = 10.0


def create_app(settings: Settings, routers: Sequence[Router], *, clock: Clock | None = None,
               run_consumer: bool = True, run_scheduler: bool = True,
               extra_contexts: Sequence[CleanupContext] = (),
               extensions: Sequence[Extension] = ()) -> web.Application:
    """The bot's web application; settings.redis.url must point at a running Redis."""
    if not settings.redis.url:
        raise ValueError("redis.url 为空：gridbot serve 会先启动内置 Redis")
    app = web.Application()
    app[appkeys.settings] = settings
    app[appkeys.clock] = clock or make_clock(settings.clock.speed, settings.clock.origin)
    app[appkeys.keys] = Keys(settings.redis.prefix)
    app[appkeys.health] = Health(settings.redis.give_up_seconds)
    app[appkeys.routers] = tuple(routers)
    wecom = settings.wecom
    app[appkeys.crypto] = WeComCrypto(wecom.token.get_secret_value(),
                                      wecom.encoding_aes_key.get_secret_value(), wecom.corp_id)
    app.cleanup_ctx.extend([redis_ctx, http_ctx, wecom_ctx, registry_ctx, audit_ctx, inbox_ctx])
    app.cleanup_ctx.extend(extra_contexts)
    for extend in extensions:
        extend(app)
    if run_consumer:
        app.cleanup_ctx.append(consumer_ctx)
    if run_scheduler:
        app.cleanup_ctx.append(scheduler_ctx)
    app.router.add_get(settings.callback.path, verify_url)
    app.router.add_post(settings.callback.path, receive)
    app.router.add_get("/healthz", healthz)
    return app


def make_context(app: web.Application, source: str = "") -> Context:
    """The handler Context for one event (`source` = its dedupe key, for the audit trail)."""
    routers: tuple[Router, ...] = app[appkeys.routers]
    return Context(
        settings=app[appkeys.settings], redis=app[appkeys.redis], keys=app[appkeys.keys],
        clock=app[appkeys.clock], wecom=app[appkeys.wecom], audit=app[appkeys.audit],
        registry=app[appkeys.registry], routers=routers, source=source,
    )


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """The shared asyncio Redis client; fails at start-up, not on the first message."""
    client = connect(app[appkeys.settings].redis.url)
    await client.ping()
    app[appkeys.redis] = client
    yield
    await client.aclose()


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    """One aiohttp ClientSession for every outgoing request."""
    limit = app[appkeys.settings].wecom.max_concurrency
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit),
                                     trace_configs=trace_configs()) as session:
        app[appkeys.http] = session
        yield


async def wecom_ctx(app: web.Application) -> AsyncIterator[None]:
    """The WeCom API client."""
    app[appkeys.wecom] = WeComClient(app[appkeys.http], app[appkeys.settings].wecom,
                                     app[appkeys.redis], app[appkeys.keys], app[appkeys.clock])
    yield


async def registry_ctx(app: web.Application) -> AsyncIterator[None]:
    """The grid registry (imported here: registry is a sibling package)."""
    from registry.store import Registry

    config = app[appkeys.settings].registry
    registry = await Registry.open(app[appkeys.redis], app[appkeys.keys], app[appkeys.clock],
                                   max_cached_groups=config.max_cached_groups)
    app[appkeys.registry] = registry
    # the first whole-city query of a process decodes every pack (~0.7 s at 100,000 groups);
    # doing it now keeps that off the first officer's notice
    warming = asyncio.create_task(registry.warm()) if config.warm_cache_on_start else None
    yield
    if warming is not None:
        warming.cancel()
        await asyncio.gather(warming, return_exceptions=True)


async def audit_ctx(app: web.Application) -> AsyncIterator[None]:
    """The append-only audit log."""
    retention = app[appkeys.settings].security.audit_retention_days
    app[appkeys.audit] = AuditLog(app[appkeys.redis], app[appkeys.keys], app[appkeys.clock],
                                  retention_days=retention)
    yield


async def inbox_ctx(app: web.Application) -> AsyncIterator[None]:
    """The intake side of the durable inbox (used by the callback view)."""
    settings = app[appkeys.settings]
    app[appkeys.inbox] = Inbox(app[appkeys.redis], app[appkeys.keys], app[appkeys.clock],
                               settings.callback, inbox_sealer(settings))
    yield


async def consumer_ctx(app: web.Application) -> AsyncIterator[None]:
    """Runs the inbox consumer in the background; lets in-flight handlers finish on stop."""
    routers: tuple[Router, ...] = app[appkeys.routers]
    consumer = InboxConsumer(
        app[appkeys.redis], app[appkeys.keys], app[appkeys.clock],
        app[appkeys.settings].callback, routers, lambda source: make_context(app, source),
        sealer=inbox_sealer(app[appkeys.settings]), health=app[appkeys.health].loop("inbox"),
    )
    app[appkeys.consumer] = consumer
    consumer.start()
    yield
    await consumer.stop(CONSUMER_STOP_SECONDS)


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    """The shared scheduler (see bot.scheduler)."""
    scheduler = Scheduler(app[appkeys.settings].redis.url, app[appkeys.keys],
                          app[appkeys.clock], app=app,
                          health=app[appkeys.health].loop("scheduler"))
    app[appkeys.scheduler] = scheduler
    scheduler.start()
    yield
    scheduler.shutdown()
    await asyncio.sleep(0)  # APScheduler's shutdown runs as a loop callback
