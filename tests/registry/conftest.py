"""Registry fixtures: a Registry on the flushed real redis, and a small hand-made tree."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.clock import Clock
from bot.keys import Keys
from registry.city import City
from registry.importer import Importer, ImportResult
from registry.keys import RegistryKeys
from registry.models import Level, Node
from registry.placement import Placer
from registry.store import Registry
from registry.synthetic import DEFAULT_RULE, generate_city

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


# A small synthetic city: 离石区 only (190 村社区, 85 of them urban), 400 groups.
SMALL_CITY = {"seed": 7, "counties": ("141102",), "total_groups": 400, "residents": 32_000}


@pytest.fixture(scope="session")
def small_city() -> City:
    return generate_city(**SMALL_CITY)  # type: ignore[arg-type]


async def import_city(registry: Registry, city: City, directory: Path) -> list[ImportResult]:
    """Write the city's CSV files and import them (nodes, people, groups)."""
    importer = Importer(registry, Placer(registry, DEFAULT_RULE))
    return [await importer.import_file(path) for path in city.write_csv(directory / "city.csv")]


@pytest.fixture
async def small_registry(registry: Registry, small_city: City, tmp_path: Path) -> Registry:
    """The registry holding the small city (its nodes, people and groups), imported from CSV."""
    results = await import_city(registry, small_city, tmp_path)
    assert all(r.ok for r in results), [r.report() for r in results]
    return registry


async def assert_sums_agree(registry: Registry) -> None:
    """In every shard, every `psum:<code>` lists exactly the packs `packs:<code>` counts,
    with their SHA-1."""
    for shard in await registry.all_shards():
        await _sums_agree(registry.redis, registry.shard_keys(shard))


async def _sums_agree(redis: aioredis.Redis, k: RegistryKeys) -> None:
    for dismissed in (False, True):
        sums = await redis.hgetall(k.all_pack_sums(dismissed=dismissed))
        for pn, sha1 in sums.items():
            rows = await redis.get(k.pack(pn, dismissed=dismissed))
            assert rows is not None and hashlib.sha1(rows.encode()).hexdigest() == sha1
        codes = {key.rsplit(":", 1)[1] async for key in redis.scan_iter(
            k.packs("*", dismissed=dismissed))}
        codes |= {key.rsplit(":", 1)[1] async for key in redis.scan_iter(
            k.pack_sums("*", dismissed=dismissed))}
        for code in codes:
            counted = await redis.hkeys(k.packs(code, dismissed=dismissed))
            listed = await redis.hgetall(k.pack_sums(code, dismissed=dismissed))
            assert listed == {pn: sums[pn] for pn in counted}, code
