"""Wiring: `console.web.setup(app)` adds /console/ to the bot's aiohttp app (an extension of
bot.app.create_app) and the console's services as a cleanup context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from bot import appkeys
from broadcasts.keys import BroadcastKeys
from cases.deps import CasesDeps
from console import assess, audit, auth, cases, collect, coverage, notices, overview
from console.deps import ConsoleDeps
from console.guard import deps_key
from console.live import LiveHub

STATIC = Path(__file__).parent / "static"


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(console_ctx)
    auth.add_routes(app)
    overview.add_routes(app)
    notices.add_routes(app)
    coverage.add_routes(app)
    collect.add_routes(app)
    audit.add_routes(app)
    assess.add_routes(app)
    cases.add_routes(app)
    app.router.add_get("/console", _to_console)
    app.router.add_static("/console/static/", STATIC, append_version=False)


async def _to_console(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console/")


async def console_ctx(app: web.Application) -> AsyncIterator[None]:
    deps = ConsoleDeps.from_app(app)
    app[deps_key] = deps
    app[cases.cases_key] = CasesDeps.build(
        app[appkeys.redis], app[appkeys.keys], app[appkeys.clock], app[appkeys.settings],
        app[appkeys.registry], app[appkeys.audit], app[appkeys.wecom])
    pattern = BroadcastKeys(app[appkeys.keys]).live("*")

    async def render(nid: int) -> dict[str, Any] | None:
        return await notices.render(deps.rt, deps.registry, nid)

    cache = notices.RenderCache(render)
    app[notices.cache_key] = cache
    hub = LiveHub(app[appkeys.redis], pattern, cache.refresh, notices.live_part,
                  health=app[appkeys.health].loop("console-live"))
    app[notices.hub_key] = hub
    hub.start()
    yield
    await hub.stop()
