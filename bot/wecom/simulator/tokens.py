"""access_token issue and validation (wecom.md §2.2): tokens expire and may die early."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from bot.wecom.simulator import errors


@dataclass(slots=True)
class TokenStore:
    corp_id: str
    secret: str
    ttl: float
    issued: dict[str, float] = field(default_factory=dict)  # token -> expires at (sim)
    revoked: set[str] = field(default_factory=set)

    def issue(self, corp_id: str, secret: str, now: float) -> tuple[str, int]:
        """gettoken: a fresh token and its lifetime in seconds."""
        if not corp_id:
            raise errors.SimError(errors.MISSING_CORPID)
        if corp_id != self.corp_id:
            raise errors.SimError(errors.INVALID_CORPID)
        if not secret:
            raise errors.SimError(errors.MISSING_SECRET)
        if not secrets.compare_digest(secret, self.secret):
            raise errors.SimError(errors.INVALID_SECRET)
        self._forget_expired(now)
        token = secrets.token_urlsafe(48)
        self.issued[token] = now + self.ttl
        return token, int(self.ttl)

    def check(self, token: str | None, now: float) -> None:
        if not token:
            raise errors.SimError(errors.MISSING_TOKEN)
        expires = self.issued.get(token)
        if expires is None or token in self.revoked:
            raise errors.SimError(errors.INVALID_TOKEN)
        if now >= expires:
            raise errors.SimError(errors.TOKEN_EXPIRED)

    def invalidate(self) -> None:
        """WeCom may invalidate tokens before expires_in (wecom.md §2.2)."""
        self.revoked.update(self.issued)

    def _forget_expired(self, now: float) -> None:
        # keep a day of expired tokens so a late caller still sees 42001, not 40014
        stale = [t for t, exp in self.issued.items() if exp < now - 86400]
        for token in stale:
            del self.issued[token]
            self.revoked.discard(token)
