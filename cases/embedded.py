"""Running the case clocks inside `gridbot serve` (any number of processes may: each clock
fires once). Added by the composition root as an extra cleanup context; the clocks' loop is
part of /healthz, and one that gives up ends `gridbot serve` non-zero, as the worker does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from bot import appkeys
from cases import escalate
from cases.clocks import ClockRunner
from cases.deps import CasesDeps


def deps_from_app(app: web.Application) -> CasesDeps:
    return CasesDeps.build(app[appkeys.redis], app[appkeys.keys], app[appkeys.clock],
                           app[appkeys.settings], app[appkeys.registry], app[appkeys.audit],
                           app[appkeys.wecom])


async def clocks_ctx(app: web.Application) -> AsyncIterator[None]:
    runner = ClockRunner(deps_from_app(app), escalate.fire,
                         health=app[appkeys.health].loop("case-clocks"))
    task = asyncio.create_task(runner.run(), name="case-clocks")
    yield
    runner.stop()
    await task
