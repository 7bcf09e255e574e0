"""Each process's cache of decoded packs never serves a pack that changed (real redis-server).

Two Registry objects on one Redis stand for two gridbot processes: one writes, the other
reads; every read must equal what a process with an empty cache reads.
"""

from __future__ import annotations

import gc
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.clock import Clock
from bot.keys import Keys
from registry.city import City
from registry.codec import ROW, US, group_content
from registry.divisions import CITY_CODE
from registry.models import DeliveryKind, Group, Level
from registry.packcache import FREEZE_AT, PackCache
from registry.store import Registry
from tests.registry.conftest import assert_sums_agree, import_city
from tests.registry.one_slot import OneSlotRegistry

COUNTY = "141102"  # 离石区, the small city's only county
LAYOUT1_UPSERT = Path(__file__).with_name("layout1_upsert_group.lua")
LAYOUT3_UPSERT = Path(__file__).with_name("layout3_upsert_group.lua")


def layout2_upsert() -> str:
    """Layout 2 differed from layout 3 only in its pack levels: 村社区 held their own packs."""
    old = "local PACK_LEVELS = {city = true, county = true, township = true, grid = true}"
    layout3 = LAYOUT3_UPSERT.read_text(encoding="utf-8")
    assert old in layout3
    return layout3.replace(old, old[:-1] + ", village = true}")


OLD_LAYOUTS = {"1": lambda: LAYOUT1_UPSERT.read_text(encoding="utf-8"), "2": layout2_upsert,
               "3": lambda: LAYOUT3_UPSERT.read_text(encoding="utf-8")}


def fresh(registry: Registry) -> Registry:
    """A process that has read nothing yet."""
    return Registry(registry.redis, Keys(registry.keys.keys.prefix), registry.clock)


async def same_as_fresh(registry: Registry, code: str = CITY_CODE) -> list[Group]:
    cached = await registry.groups_under(code, include_dismissed=True)
    assert cached == await fresh(registry).groups_under(code, include_dismissed=True)
    return cached


async def test_a_warm_query_decodes_only_the_packs_another_process_changed(
    small_registry: Registry,
) -> None:
    reader, writer = small_registry, fresh(small_registry)
    before = await same_as_fresh(reader)
    packs = len(reader.pack_cache)
    assert packs > 100 and reader.pack_cache.decoded == packs
    await same_as_fresh(reader)
    assert reader.pack_cache.decoded == packs  # nothing changed: nothing decoded again

    a, b = before[0], before[-1]
    await writer.update_group(a.chat_id, lambda g: g and g._replace(member_count=7))
    await writer.update_group(b.chat_id, lambda g: g and g._replace(name="新名字"))
    after = await same_as_fresh(reader)
    assert reader.pack_cache.decoded == packs + 2
    changed = {g.chat_id: g for g in after}
    assert changed[a.chat_id].member_count == 7 and changed[b.chat_id].name == "新名字"


async def test_moves_dismissals_and_restores_are_seen_by_a_warm_process(
    small_registry: Registry,
) -> None:
    reader, writer = small_registry, fresh(small_registry)
    groups = await same_as_fresh(reader)
    first, last = groups[0], groups[-1]
    await writer.update_group(first.chat_id, lambda g: g and g._replace(node=last.node))
    moved = await same_as_fresh(reader)
    assert next(g for g in moved if g.chat_id == first.chat_id).node == last.node
    await writer.dismiss_group(last.chat_id, 100.0)
    assert last.chat_id not in {g.chat_id for g in await reader.target_groups([CITY_CODE])}
    assert last.chat_id in {g.chat_id for g in await same_as_fresh(reader)}
    await writer.upsert_group(last)
    assert last.chat_id in {g.chat_id for g in await reader.target_groups([CITY_CODE])}
    await same_as_fresh(reader, COUNTY)
    await assert_sums_agree(reader)


async def test_rewritten_data_is_read_again_not_served_from_memory(
    registry: Registry, small_city: City, tmp_path: Path
) -> None:
    """FLUSHDB and a different import under the same pack nodes: nothing stale survives."""
    await import_city(registry, small_city, tmp_path)
    old = await same_as_fresh(registry)
    await registry.redis.flushdb()
    groups = [g._replace(name=g.name + "（新）") for g in small_city.groups]
    renamed = replace(small_city, groups=groups)
    await import_city(registry, renamed, tmp_path / "second")
    new = await same_as_fresh(registry)
    assert [g.chat_id for g in new] == [g.chat_id for g in old]
    assert all(g.name.endswith("（新）") for g in new)


@pytest.mark.parametrize("layout", sorted(OLD_LAYOUTS))
async def test_indexes_of_an_older_gridbot_are_rebuilt_once_at_start(
    registry: Registry, small_city: City, tmp_path: Path, redis: aioredis.Redis, layout: str
) -> None:
    """Data written with layout 1 (packs per 村社区, no sums), 2 (packs per 网格 and 村社区)
    or 3 (as now, but all in the one slot `{reg}`) reads the same after the rebuild (which
    moves it into the per-县区 shards) as data written by this version; the rebuild runs once
    and keeps history; no group key is left in `{reg}`."""
    await import_city(registry, small_city, tmp_path)
    expected = await registry.groups_under(CITY_CODE, include_dismissed=True)
    expected_dump = await registry.dump()
    history = await registry.history(expected[0].chat_id)

    await redis.flushdb()
    old = OneSlotRegistry(redis, Keys(registry.keys.keys.prefix), registry.clock,
                          OLD_LAYOUTS[layout]())
    await import_city(old, small_city, tmp_path / "old")
    await old.forget_shards()
    await redis.set(registry.keys.layout(), layout)
    assert await redis.hlen(registry.keys.groups()) == len(small_city.groups)  # in `{reg}`
    villages = [n.code for n in small_city.nodes if n.level is Level.VILLAGE]
    own_packs = sum([await redis.exists(registry.keys.pack(v)) for v in villages])
    assert (own_packs > 0) is (layout != "3")  # villages held their own packs up to layout 2
    if layout == "1":
        assert await redis.exists(registry.keys.pack_sums(CITY_CODE)) == 0  # no sums yet

    starting = fresh(registry)
    assert await starting.ensure_layout() is True
    assert await fresh(registry).ensure_layout() is False  # the second process: nothing to do
    assert await starting.groups_under(CITY_CODE, include_dismissed=True) == _same_times(
        expected, await registry.all_groups())
    assert await starting.dump() == expected_dump
    assert [h.what for h in await starting.history(expected[0].chat_id)] == [
        h.what for h in history]
    await same_as_fresh(starting)
    await assert_sums_agree(starting)
    shards = [starting.shard_keys(s) for s in await starting.all_shards()]
    assert len(shards) > 10  # one per 乡镇街道
    assert sum([await redis.exists(k.pack(v)) for k in shards for v in villages]) == 0
    assert sum([await redis.hlen(k.groups()) for k in shards]) == len(small_city.groups)
    index_only = ("nodes", "kids:", "name:", "level:", "people", "staff:", "role:", "layout",
                  "gshard", "shards", "bound")
    left = [key async for key in redis.scan_iter(registry.keys.prefix + "*")]
    assert left and all(k[len(registry.keys.prefix):].startswith(index_only) for k in left), left


def _same_times(groups: list[Group], stored: list[Group]) -> list[Group]:
    """`groups` with the updated_at now stored (the two imports ran at different times)."""
    at = {g.chat_id: g.updated_at for g in stored}
    return [g._replace(updated_at=at[g.chat_id]) for g in groups]


async def test_a_rebuild_keeps_updated_at(small_registry: Registry, redis: aioredis.Redis) -> None:
    before = await small_registry.all_groups()
    await redis.delete(small_registry.keys.layout())
    assert await fresh(small_registry).ensure_layout() is True
    assert await small_registry.all_groups() == before


async def test_a_pack_without_its_sum_is_read_from_its_rows(
    small_registry: Registry, redis: aioredis.Redis
) -> None:
    """A building's pack found only through the all-packs sum hash (an interrupted write
    cannot leave this, but a hand-repaired database might): read, never trusted stale."""
    building = next(g for g in await small_registry.groups_under(CITY_CODE)
                    if g.node.count("-") == 2)
    await same_as_fresh(small_registry, building.node)
    [shard] = await small_registry.shards_for([building.node])
    await redis.delete(small_registry.shard_keys(shard).all_pack_sums())
    decoded = small_registry.pack_cache.decoded
    assert building in await small_registry.groups_under(building.node)
    assert small_registry.pack_cache.decoded == decoded + 1


async def test_a_small_cache_stays_small_and_correct(
    small_registry: Registry, keys: Keys, clock: Clock
) -> None:
    tiny = Registry(small_registry.redis, keys, clock, max_cached_groups=50)
    for code in (CITY_CODE, COUNTY, CITY_CODE):
        assert await tiny.groups_under(code) == await fresh(tiny).groups_under(code)
        assert 0 < tiny.pack_cache.groups <= 50


async def test_warming_at_start_leaves_the_first_query_nothing_to_decode(
    small_registry: Registry,
) -> None:
    starting = fresh(small_registry)
    assert await starting.warm() == len(await small_registry.groups_under(CITY_CODE)) > 300
    decoded = starting.pack_cache.decoded
    for code in (COUNTY, CITY_CODE):
        assert await starting.groups_under(code) == await fresh(starting).groups_under(code)
    assert starting.pack_cache.decoded == decoded


def test_a_big_decode_is_frozen_out_of_later_collections() -> None:
    """A cold start's Groups are built with the collector paused and then frozen, so no
    later collection traverses them; a small decode (live changes) is left to the
    collector as usual."""
    def bodies(n: int, packs: int) -> tuple[str, list[str]]:
        rows = [group_content(Group(f"wr{i:06d}", f"群{i}", DeliveryKind.APPCHAT, f"n{i % packs}",
                                    "gw1", 10)) + US + "1.0" for i in range(n)]
        stale: list[str] = []
        for p in range(packs):
            stale += [f"n{p}", ROW.join(rows[p::packs])]
        return US.join(f"n{p}{US}sum{p}" for p in range(packs)), stale

    gc.unfreeze()
    try:
        assert gc.isenabled()
        state, stale = bodies(FREEZE_AT // 10, 50)
        PackCache().take("", state, stale, {})
        assert gc.get_freeze_count() == 0 and gc.isenabled()
        state, stale = bodies(FREEZE_AT, 500)
        packs = PackCache().take("", state, stale, {})
        assert sum(len(p.groups) for p in packs) == FREEZE_AT
        assert gc.get_freeze_count() > FREEZE_AT and gc.isenabled()
    finally:
        gc.unfreeze()
