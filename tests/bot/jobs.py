"""Job functions the scheduler tests schedule by reference ("tests.bot.jobs:…")."""

from __future__ import annotations

import os
import time

from bot import appkeys
from bot.redis import connect
from bot.scheduler import current_app, job_context

FIRED = "test:fired"


async def record_fire(*, url: str, tag: str) -> None:
    """Append `tag`, the firing scheduler and the real time to the FIRED list."""
    scheduler = job_context().scheduler
    client = connect(url)
    try:
        await client.rpush(FIRED, f"{tag}|{os.getpid()}:{id(scheduler)}|{time.time():.3f}")  # type: ignore[misc]
    finally:
        await client.aclose()


async def record_via_app(*, tag: str) -> None:
    """Append `tag` through the running app's own Redis client (current_app())."""
    redis = current_app()[appkeys.redis]
    await redis.rpush(FIRED, f"{tag}|app|{time.time():.3f}")  # type: ignore[misc]
