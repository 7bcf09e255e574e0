"""Running a broadcast worker inside `gridbot serve` (small deployments, the demo).

    create_app(settings, ROUTERS, extra_contexts=[worker_ctx], extensions=[api.extension])

Separate `gridbot worker` processes do the same work and may run alongside.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from bot import appkeys
from broadcasts.schedule import runtime_from_app
from broadcasts.worker import Worker


async def worker_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: one Worker on the app's services, drained on shutdown; its health is
    part of /healthz, and a worker that gives up ends `gridbot serve` non-zero."""
    worker = Worker(runtime_from_app(app), health=app[appkeys.health].loop("broadcast-worker"))
    task = asyncio.create_task(worker.run(), name="broadcast-worker")
    yield
    worker.stop()
    await task
