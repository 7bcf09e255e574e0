"""`gridbot serve`: run the bot (callback endpoint, inbox consumer, scheduler).

Starts the embedded redis-server when redis.url is empty, and stops cleanly — in-flight
handlers finish, then Redis (if embedded) flushes and exits — on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from bot import appkeys
from bot.app import create_app
from bot.clock import Clock
from bot.log import setup_logging
from bot.redis import DataDirBusyError, RedisUnavailableError, describe, redis_url_for
from bot.settings import Settings, load_settings

log = logging.getLogger("gridbot.serve")


def register(subparsers: Any) -> None:
    """Add the `serve` sub-command."""
    parser = subparsers.add_parser("serve", help="启动机器人：接收企业微信回调并处理消息")
    parser.add_argument("--host", default=None, help="监听地址（默认取 server.host）")
    parser.add_argument("--port", type=int, default=None, help="监听端口（默认取 server.port）")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of `gridbot serve`; returns the exit code."""
    settings = load_settings(args.settings)
    setup_logging(settings.log.level)
    host = args.host or settings.server.host
    port = settings.server.port if args.port is None else args.port
    try:
        with redis_url_for(settings.redis.url, settings.redis.data_dir, role="serve",
                           appendfsync=settings.redis.appendfsync) as url:
            log.info("Redis: %s", describe(url, None if settings.redis.url
                                            else settings.redis.data_dir))
            code = asyncio.run(serve(with_redis_url(settings, url), host, port))
    except DataDirBusyError as error:
        log.error("拒绝启动：%s", error)
        return 2
    except RedisUnavailableError as error:
        log.error("%s", error)
        return 1
    except (RedisError, OSError) as error:  # start-up could not reach Redis or bind the port
        log.error("启动失败: %s", type(error).__name__)
        return 1
    return code


def with_redis_url(settings: Settings, url: str) -> Settings:
    """`settings` with redis.url set (to the embedded server's URL)."""
    return settings.model_copy(update={"redis": settings.redis.model_copy(update={"url": url})})


def build_app(settings: Settings, clock: Clock | None = None, *,
              embedded_worker: bool | None = None) -> web.Application:
    """The production app: every handlers router, the resident form, the broadcast API and
    (unless disabled) one broadcast worker in-process (composition root: imports upward)."""
    import collect.web
    import console.web
    import deliberation.web
    from broadcasts import api
    from broadcasts.embedded import worker_ctx
    from cases.embedded import clocks_ctx
    from handlers import ROUTERS

    with_worker = (settings.broadcast.embedded_worker if embedded_worker is None
                   else embedded_worker)
    contexts = [worker_ctx] if with_worker else []
    if settings.cases.embedded_clocks:
        contexts.append(clocks_ctx)
    return create_app(settings, ROUTERS, clock=clock, extra_contexts=contexts,
                      extensions=[collect.web.setup, deliberation.web.setup, api.extension,
                                  console.web.setup])


async def serve(settings: Settings, host: str, port: int, *,
                ready: asyncio.Future[int] | None = None) -> int:
    """Run the app until SIGTERM/SIGINT (exit code 0) or until one of its long-running loops
    gives up (1, for the supervisor to restart it); `ready` receives the bound port."""
    app = build_app(settings)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    stop = _stop_on_signals()
    gave_up = app[appkeys.health].gave_up
    watch = asyncio.create_task(gave_up.wait())
    watch.add_done_callback(lambda _t: stop.set())
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = _bound_port(runner, port)
        log.info("GridBot 已启动: http://%s:%s%s", host, bound, settings.callback.path)
        if ready is not None:
            ready.set_result(bound)
        await stop.wait()
        if gave_up.is_set():
            log.error("有循环无法恢复（%s），退出码 1", app[appkeys.health].problems())
        else:
            log.info("收到停止信号，正在退出…")
    finally:
        watch.cancel()
        await runner.cleanup()
    log.info("GridBot 已停止")
    return 1 if gave_up.is_set() else 0


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _bound_port(runner: web.AppRunner, default: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return default
