"""Conversation state of one worker (guided flow, a submission awaiting 确认) in Redis.

The state holds what the worker typed, personal numbers included, so it is sealed with the
field cipher (bound to the user and the session name) and expires after
settings.collect.session_ttl_seconds: a restart loses nothing, an abandoned flow leaves nothing.
"""

from __future__ import annotations

import json
from typing import Any

from collect.crypto import FieldCryptoError
from collect.deps import CollectDeps

FLOW = "collect-flow"
CONFIRM = "collect-confirm"


class Sessions:
    def __init__(self, deps: CollectDeps) -> None:
        self.deps = deps

    def _key(self, userid: str, name: str) -> str:
        return self.deps.keys.keys.session(userid, name)

    async def load(self, userid: str, name: str) -> dict[str, Any] | None:
        sealed = await self.deps.redis.get(self._key(userid, name))
        if not sealed:
            return None
        try:
            data: dict[str, Any] = json.loads(self.deps.cipher.open(str(sealed),
                                                                    f"session:{userid}", name))
        except (FieldCryptoError, ValueError):
            await self.drop(userid, name)  # unreadable (key retired): start over
            return None
        return data

    async def save(self, userid: str, name: str, data: dict[str, Any]) -> None:
        sealed = self.deps.cipher.seal(json.dumps(data, ensure_ascii=False),
                                       f"session:{userid}", name)
        ttl = self.deps.settings.collect.session_ttl_seconds
        await self.deps.redis.set(self._key(userid, name), sealed,
                                  px=self.deps.clock.real_ms(ttl))

    async def drop(self, userid: str, name: str) -> bool:
        return bool(await self.deps.redis.delete(self._key(userid, name)))
