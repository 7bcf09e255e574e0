"""Addresses in a 村/社区 with one grid need not name the grid (issue 11 §5): the address
resolves to that grid (and its 楼栋), as if the grid had been named."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.clock import Clock
from bot.keys import Keys
from collect.resolve import Resolved, resolve_address
from registry.store import Registry
from tests.collect.conftest import B001, LISHI_GRID, TREE


async def registry_with_tree(redis: aioredis.Redis) -> Registry:
    registry = Registry(redis, Keys("t"), Clock())
    await registry.upsert_nodes(list(TREE))
    return registry


async def test_a_community_with_one_grid_stands_for_it(redis: aioredis.Redis) -> None:
    registry = await registry_with_tree(redis)
    for text, hint in (("龙凤社区/振兴路18号3栋2单元501室", ""),
                       ("振兴路18号3栋2单元501室", "龙凤社区")):
        found = await resolve_address(registry, text, hint=hint)
        assert isinstance(found, Resolved), found
        assert found.node.code == LISHI_GRID and found.grid() == LISHI_GRID
        assert found.parts.building == "3" and found.parts.room == "501"
    by_scope = await resolve_address(registry, "振兴路18号", scope=("141102001001",))
    assert isinstance(by_scope, Resolved) and by_scope.grid() == LISHI_GRID


async def test_a_community_with_two_grids_is_not_guessed(redis: aioredis.Redis) -> None:
    registry = await registry_with_tree(redis)
    found = await resolve_address(registry, "东关社区/振兴路18号3号楼2单元501室")
    assert isinstance(found, Resolved) and found.node.code == "141181001001"
    named = await resolve_address(registry, "东关一网格/振兴路18号3号楼2单元501室")
    assert isinstance(named, Resolved) and named.node.code == B001
