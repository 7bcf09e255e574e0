"""API keys of the broadcast HTTP API, each bound to one officer.

Only a SHA-256 digest is stored; the key is shown once at creation. A request acts as the
bound officer, so the same role and area checks and the same audit apply as in app chat.
"""

from __future__ import annotations

import hashlib
import secrets

import redis.asyncio as aioredis

from bot.clock import Clock
from bot.rtypes import opt, smap
from broadcasts.keys import BroadcastKeys

PREFIX = "gbk_"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    """Create, look up, list and revoke keys."""

    def __init__(self, redis: aioredis.Redis, keys: BroadcastKeys, clock: Clock) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock

    async def create(self, userid: str, label: str = "") -> tuple[str, str]:
        """A new key for `userid`: (the key, shown once; its id, for listing and revoking)."""
        key = PREFIX + secrets.token_urlsafe(32)
        d = digest(key)
        key_id = d[:12]
        # two slots, so no MULTI: the key first, then its listing entry; a crash in between
        # leaves a key nobody was ever shown
        await self._redis.hset(self._keys.api_key(d), mapping={
            "userid": userid, "label": label, "key_id": key_id,
            "created_at": f"{self._clock.now():.0f}"})
        await self._redis.hset(self._keys.api_key_ids(), key_id, d)
        return key, key_id

    async def officer_for(self, key: str) -> str | None:
        """The userid a key acts as, or None for an unknown or revoked key."""
        if not key.startswith(PREFIX):
            return None
        return opt(await self._redis.hget(self._keys.api_key(digest(key)), "userid"))

    async def revoke(self, key_id: str) -> bool:
        d = opt(await self._redis.hget(self._keys.api_key_ids(), key_id))
        if d is None:
            return False
        await self._redis.delete(self._keys.api_key(d))
        await self._redis.hdel(self._keys.api_key_ids(), key_id)
        return True

    async def list(self, userid: str = "") -> list[dict[str, str]]:
        ids = smap(await self._redis.hgetall(self._keys.api_key_ids()))
        out = []
        for d in ids.values():
            row = smap(await self._redis.hgetall(self._keys.api_key(d)))
            if row and (not userid or row.get("userid") == userid):
                out.append(row)
        return sorted(out, key=lambda r: r.get("created_at", ""))
