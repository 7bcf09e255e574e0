"""The access token, cached in Redis and shared by every gridbot process.

WeCom rate-limits gettoken and may invalidate a token early (wecom.md §2.2), so exactly one
process refreshes at a time: under a Redis lock (SET NX PX), with a double-check after taking
it, because another process may have refreshed while we waited. A caller that saw a token fail
passes it as `stale`, so a refresh that already happened elsewhere is reused, not repeated.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from bot.clock import Clock
from bot.keys import Keys
from bot.lease import RELEASE
from bot.redis import as_str
from bot.wecom.errors import TransientError

# (token, expires_in seconds) from gettoken
Fetch = Callable[[], Awaitable[tuple[str, int]]]

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# Keep a margin so that a token is never used in its last minutes (clock skew, slow calls).
_EXPIRY_MARGIN = 300
# The lock is a lease the holder extends while it fetches: a holder killed mid-fetch blocks
# the others for at most _LEASE_MS, however long a live holder's fetch (with retries) takes.
_LEASE_MS = 3000
_WAIT_SECONDS = 60.0
_POLL_SECONDS = 0.05


class TokenStore:
    """Get the shared access token; refresh it once across processes when it goes stale."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, clock: Clock, corp_id: str,
                 agent_id: int, fetch: Fetch) -> None:
        self._redis = redis
        self._clock = clock
        self._key = keys.access_token(corp_id, agent_id)
        self._lock = keys.access_token_lock(corp_id, agent_id)
        self._fetch = fetch
        self._release = redis.register_script(RELEASE)
        self._extend = redis.register_script(_EXTEND)

    @property
    def key(self) -> str:
        """Where the shared token lives (callers may read it in a batch of their own)."""
        return self._key

    async def get(self) -> str:
        """The cached token, fetching one when there is none."""
        token = as_str(await self._redis.get(self._key))
        return token or await self.refresh(None)

    async def refresh(self, stale: str | None) -> str:
        """A token different from `stale`: someone else's fresh one, or one we fetch."""
        deadline = time.monotonic() + _WAIT_SECONDS
        while time.monotonic() < deadline:
            current = as_str(await self._redis.get(self._key))
            if current and current != stale:
                return current
            owner = secrets.token_hex(8)
            if await self._redis.set(self._lock, owner, nx=True, px=_LEASE_MS):
                return await self._refresh_holding(owner, stale)
            await asyncio.sleep(_POLL_SECONDS)  # real time: another process is fetching
        raise TransientError("gettoken", "等待其他进程刷新令牌超时")

    async def _refresh_holding(self, owner: str, stale: str | None) -> str:
        keeper = asyncio.create_task(self._keep_lease(owner))
        try:
            return await self._refresh_locked(stale)
        finally:
            keeper.cancel()
            await self._release(keys=[self._lock], args=[owner])

    async def _keep_lease(self, owner: str) -> None:
        while True:
            await asyncio.sleep(_LEASE_MS / 3000)
            await self._extend(keys=[self._lock], args=[owner, _LEASE_MS])

    async def _refresh_locked(self, stale: str | None) -> str:
        current = as_str(await self._redis.get(self._key))
        if current and current != stale:  # refreshed while we waited for the lock
            return current
        token, expires_in = await self._fetch()
        # short-lived tokens (simulator tests) keep half their life instead of the margin
        ttl = expires_in - _EXPIRY_MARGIN if expires_in > 2 * _EXPIRY_MARGIN else expires_in / 2
        await self._redis.set(self._key, token, px=self._clock.real_ms(ttl))
        return token
