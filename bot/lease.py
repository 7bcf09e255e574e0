"""A short Redis lease: one holder at a time, released only by its holder.

`lease` takes the key (SET NX PX with a random token), waiting up to `wait_s` while another
holds it; a holder that crashed lets it lapse after `ms`. Leaving the block releases it only
if the token is still ours, so a holder that outlived its lease frees nobody else's.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
POLL_S = 0.01


class LeaseBusyError(RuntimeError):
    """Another holder kept the lease for longer than the caller would wait."""


@asynccontextmanager
async def lease(redis: aioredis.Redis, key: str, *, ms: int,
                wait_s: float) -> AsyncIterator[str]:
    """Hold `key` for the block (at most `ms`); yields the holder's token."""
    token = secrets.token_hex(8)
    deadline = time.monotonic() + wait_s
    while not await redis.set(key, token, nx=True, px=ms):
        if time.monotonic() >= deadline:
            raise LeaseBusyError(key)
        await asyncio.sleep(POLL_S)
    try:
        yield token
    finally:
        await redis.eval(RELEASE, 1, key, token)
