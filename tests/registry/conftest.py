"""Registry fixtures: a Registry on the flushed real redis, and a small hand-made tree."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from bot.clock import Clock
from bot.keys import Keys
from bot.registry.models import Level, Node
from bot.registry.store import Registry

# 吕梁市 / 孝义市 / 新义街道 / 东关社区 (urban, two grids, buildings) and 梧桐镇 / 下堡村 (rural)
TREE = (
    Node("141100", "吕梁市", Level.CITY),
    Node("141181", "孝义市", Level.COUNTY, "141100"),
    Node("141181001", "新义街道", Level.TOWNSHIP, "141181"),
    Node("141181001001", "东关社区", Level.VILLAGE, "141181001", urban=True),
    Node("141181001001-G01", "东关一网格", Level.GRID, "141181001001", urban=True),
    Node("141181001001-G01-B001", "1号楼", Level.BUILDING, "141181001001-G01"),
    Node("141181001001-G01-B002", "2号楼", Level.BUILDING, "141181001001-G01"),
    Node("141181001001-G02", "东关二网格", Level.GRID, "141181001001", urban=True),
    Node("141181001001-G02-B003", "3号楼", Level.BUILDING, "141181001001-G02"),
    Node("141181101", "梧桐镇", Level.TOWNSHIP, "141181"),
    Node("141181101201", "下堡村", Level.VILLAGE, "141181101"),
    Node("141181101201-G01", "下堡村网格", Level.GRID, "141181101201"),
    Node("141102", "离石区", Level.COUNTY, "141100"),
    Node("141102001", "滨河街道", Level.TOWNSHIP, "141102"),
    Node("141102001001", "龙凤社区", Level.VILLAGE, "141102001", urban=True),
    Node("141102001001-G01", "龙凤一网格", Level.GRID, "141102001001", urban=True),
    Node("141102001001-G01-B001", "1号楼", Level.BUILDING, "141102001001-G01"),
)


@pytest.fixture
def registry(redis: aioredis.Redis, keys: Keys, clock: Clock) -> Registry:
    return Registry(redis, keys, clock)


@pytest.fixture
async def tree(registry: Registry) -> Registry:
    for node in TREE:
        await registry.upsert_node(node)
    return registry
