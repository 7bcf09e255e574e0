"""A Registry that writes the way gridbot did up to layout 3: every key under `{reg}`.

Its writes run the old group script (passed in) on the old keys, which the index's key
builders still name; reads go there too. Tests use it to build data for the migration.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from bot.clock import Clock
from bot.keys import Keys
from registry.keys import NO_SHARD, RegistryKeys
from registry.models import Group
from registry.shards import Route
from registry.store import Registry


class OneSlotRegistry(Registry):
    def __init__(self, redis: aioredis.Redis, keys: Keys, clock: Clock, script: str) -> None:
        super().__init__(redis, keys, clock)
        self._upsert_group = redis.register_script(script)

    def shard_keys(self, shard: str) -> RegistryKeys:
        return self.keys

    async def _routes(self, groups: Sequence[Group]) -> list[Route]:
        return [r._replace(held=(r.shard,)) for r in await super()._routes(groups)]

    async def homes(self, chat_ids: Sequence[str]) -> list[str | None]:
        return [NO_SHARD] * len(chat_ids)

    async def all_shards(self) -> list[str]:
        return [NO_SHARD]

    async def shards_for(self, codes: Sequence[str]) -> list[str]:
        return [NO_SHARD]

    async def forget_shards(self) -> None:
        """Leave no trace of layout 4 (the routes claimed shards in the index)."""
        k = self.keys
        await self.redis.delete(k.group_shards(), k.shards(), k.moving())
