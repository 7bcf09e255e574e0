"""API keys of the broadcast HTTP API, each bound to one officer.

Only a SHA-256 digest is stored; the key is shown once at creation. A request acts as the
bound officer, so the same role and area checks and the same audit apply as in app chat.
Every key expires: `broadcast.api_key_days` after creation unless a shorter or longer life
(at most `broadcast.api_key_max_days`) is asked for; keys stored before expiry existed expire
that long after their creation. A revoked key is kept (marked) so listings show it and a
request with it is refused as revoked rather than unknown.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis

from bot.clock import Clock
from bot.rtypes import smap
from broadcasts.keys import BroadcastKeys

PREFIX = "gbk_"
DEFAULT_DAYS = 90.0
MAX_DAYS = 365.0


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyCheck:
    """Whom a key acts as, or why it does not (Chinese, for the audit and the 401)."""

    userid: str | None
    reason: str = ""
    key_id: str = ""


class ApiKeys:
    """Create, look up, list and revoke keys."""

    def __init__(self, redis: aioredis.Redis, keys: BroadcastKeys, clock: Clock, *,
                 default_days: float = DEFAULT_DAYS, max_days: float = MAX_DAYS) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self.default_days = default_days
        self.max_days = max_days

    async def create(self, userid: str, label: str = "", days: float | None = None
                     ) -> tuple[str, str]:
        """A new key for `userid`: (the key, shown once; its id, for listing and revoking).
        ValueError (Chinese) when `days` is not within (0, max_days]."""
        life = self.default_days if days is None else days
        if not 0 < life <= self.max_days:
            raise ValueError(f"有效期须大于 0 且不超过 {self.max_days:g} 天")
        key = PREFIX + secrets.token_urlsafe(32)
        d = digest(key)
        key_id = d[:12]
        now = self._clock.now()
        # two slots, so no MULTI: the key first, then its listing entry; a crash in between
        # leaves a key nobody was ever shown
        await self._redis.hset(self._keys.api_key(d), mapping={
            "userid": userid, "label": label, "key_id": key_id,
            "created_at": f"{now:.0f}", "expires_at": f"{now + life * 86400:.0f}"})
        await self._redis.hset(self._keys.api_key_ids(), key_id, d)
        return key, key_id

    async def check(self, key: str) -> KeyCheck:
        """The userid a key acts as, or the reason it does not."""
        if not key.startswith(PREFIX):
            return KeyCheck(None, "接口密钥格式不对")
        row = smap(await self._redis.hgetall(self._keys.api_key(digest(key))))
        if not row.get("userid"):
            return KeyCheck(None, "接口密钥不存在")
        key_id = row.get("key_id", "")
        if row.get("revoked_at"):
            return KeyCheck(None, f"接口密钥 {key_id} 已吊销", key_id)
        if self._clock.now() >= self._expires_at(row):
            return KeyCheck(None, f"接口密钥 {key_id} 已过期，请重新申请", key_id)
        return KeyCheck(row["userid"], "", key_id)

    async def officer_for(self, key: str) -> str | None:
        """The userid a key acts as, or None for an unknown, revoked or expired key."""
        return (await self.check(key)).userid

    def _expires_at(self, row: dict[str, str]) -> float:
        if row.get("expires_at"):
            return float(row["expires_at"])
        return float(row.get("created_at") or 0) + self.default_days * 86400

    async def revoke(self, key_id: str) -> bool:
        d = smap(await self._redis.hgetall(self._keys.api_key_ids())).get(key_id)
        if d is None or not await self._redis.exists(self._keys.api_key(d)):
            return False
        await self._redis.hset(self._keys.api_key(d), "revoked_at", f"{self._clock.now():.0f}")
        return True

    async def list(self, userid: str = "") -> list[dict[str, str]]:
        ids = smap(await self._redis.hgetall(self._keys.api_key_ids()))
        out = []
        for d in ids.values():
            row = smap(await self._redis.hgetall(self._keys.api_key(d)))
            if row and (not userid or row.get("userid") == userid):
                row["expires_at"] = f"{self._expires_at(row):.0f}"
                out.append(row)
        return sorted(out, key=lambda r: r.get("created_at", ""))

