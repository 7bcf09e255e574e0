"""Console sessions in Redis.

The cookie carries a random 256-bit id; Redis stores only its SHA-256 (a copy of the database
gives no usable cookie). A session holds the userid it was created for and its CSRF token;
every request renews the idle expiry (a Redis TTL, so any process sees it), and a session
also ends `max_hours` after sign-in whatever its use.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from bot.rtypes import smap
from console.keys import ConsoleKeys

LOGIN_STATE_SECONDS = 300  # as long as WeCom's code lives


@dataclass(frozen=True, slots=True)
class Session:
    digest: str
    userid: str
    csrf: str
    created: float

    def csrf_ok(self, token: str) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf.encode(), token.encode())


def digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()[:40]


class SessionStore:
    def __init__(self, redis: aioredis.Redis, keys: ConsoleKeys, *, idle_seconds: int,
                 max_seconds: int) -> None:
        self._redis = redis
        self._keys = keys
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds

    async def create(self, userid: str) -> tuple[str, Session]:
        """A new session (a new id at every sign-in: no fixation); returns (cookie, session)."""
        sid = secrets.token_urlsafe(32)
        session = Session(digest(sid), userid, secrets.token_urlsafe(32), time.time())
        key = self._keys.session(session.digest)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"userid": userid, "csrf": session.csrf,
                                "created": repr(session.created)})
        pipe.expire(key, self.idle_seconds)
        await pipe.execute()
        return sid, session

    async def get(self, sid: str) -> Session | None:
        """The live session for cookie `sid` (renewing its idle expiry), or None."""
        if not sid or len(sid) > 100:
            return None
        key = self._keys.session(digest(sid))
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(key)
        pipe.expire(key, self.idle_seconds)  # no-op when the key is gone
        raw, _ = await pipe.execute()
        data = smap(raw)
        if not data.get("userid"):
            return None
        session = Session(digest(sid), data["userid"], data["csrf"], float(data["created"]))
        if time.time() - session.created > self.max_seconds:
            await self._redis.delete(key)
            return None
        return session

    async def end(self, session: Session) -> None:
        await self._redis.delete(self._keys.session(session.digest))

    # --- the login round trip ----------------------------------------------------------
    async def new_login_state(self, next_path: str) -> str:
        """`state` for WeCom's login page (a-zA-Z0-9, ≤ 128 bytes), remembered 5 minutes."""
        state = secrets.token_hex(16)
        await self._redis.set(self._keys.login_state(state), next_path, ex=LOGIN_STATE_SECONDS)
        return state

    async def take_login_state(self, state: str) -> str | None:
        """The page to return to, once: a state is spent by its first use."""
        if not state or len(state) > 128 or not state.isalnum():
            return None
        value = await self._redis.getdel(self._keys.login_state(state))
        return value.decode() if isinstance(value, bytes) else value

    # --- one-time sign-in links (the demo prints one) ------------------------------------
    async def new_link(self, userid: str, ttl_seconds: int = 600) -> str:
        token = secrets.token_urlsafe(32)
        await self._redis.set(self._keys.link(digest(token)), userid, ex=ttl_seconds)
        return token

    async def take_link(self, token: str) -> str | None:
        if not token or len(token) > 100:
            return None
        value = await self._redis.getdel(self._keys.link(digest(token)))
        return value.decode() if isinstance(value, bytes) else value
