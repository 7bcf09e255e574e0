"""Sync from WeCom (the simulator over real HTTP, the bot's own WeComClient)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from pytest_aiohttp import AiohttpServer

from bot.clock import Clock
from bot.keys import Keys
from bot.settings import Settings
from bot.wecom.client import WeComClient
from bot.wecom.errors import TransientError
from bot.wecom.simulator import FaultConfig, LatencyConfig, SimConfig, WeComSimulator
from registry import moves
from registry.city import City
from registry.importer import Importer
from registry.models import DeliveryKind
from registry.placement import Placer
from registry.store import Registry
from registry.sync import RegistrySync, SyncBusyError
from registry.synthetic import DEFAULT_RULE, load_into_simulator

GET = "externalcontact/groupchat/get"


@dataclass
class WeCom:
    sim: WeComSimulator
    client: WeComClient


@pytest.fixture
async def wecom(
    make_settings: Callable[..., Settings],
    aiohttp_server: AiohttpServer,
    redis: aioredis.Redis,
    keys: Keys,
) -> AsyncIterator[Callable[..., Any]]:
    """wecom(**SimConfig overrides) -> a simulator and a WeComClient talking to it."""
    async with aiohttp.ClientSession() as session:

        async def build(**overrides: Any) -> WeCom:
            clock = Clock()
            config = SimConfig.from_settings(
                make_settings(), clock, latency=LatencyConfig.none(), **overrides
            )
            sim = WeComSimulator(config)
            server = await aiohttp_server(sim.app)
            settings = make_settings(
                {
                    "GRIDBOT_WECOM__API_BASE_URL": str(server.make_url("/cgi-bin/")),
                    "GRIDBOT_WECOM__CORP_ID": config.corp_id,
                    "GRIDBOT_WECOM__SECRET": config.secret,
                }
            )
            return WeCom(sim, WeComClient(session, settings.wecom, redis, keys, clock))

        yield build


def syncer(registry: Registry, wecom: WeCom, page_size: int = 1000) -> RegistrySync:
    return RegistrySync(
        registry, wecom.client, Placer(registry, DEFAULT_RULE), page_size=page_size
    )


def customer_groups(dump: dict[str, Any], *, tags: bool = True) -> dict[str, Any]:
    return {
        k: {**g, "tags": g["tags"] if tags else []}
        for k, g in dump["groups"].items()
        if g["kind"] == "customer_group"
    }


async def import_tree_and_people(registry: Registry, city: City, directory: Path) -> None:
    importer = Importer(registry, Placer(registry, DEFAULT_RULE))
    nodes, people, _ = city.write_csv(directory / "city.csv")
    for path in (nodes, people):
        assert (await importer.import_file(path)).ok


async def test_import_then_sync_leaves_the_registry_identical(
    small_registry: Registry,
    small_city: City,
    wecom: Callable[..., Any],
    tmp_path: Path,
) -> None:
    w: WeCom = await wecom()
    load_into_simulator(small_city, w.sim)
    before = await small_registry.dump()
    result = await syncer(small_registry, w).run()
    customer = sum(1 for g in small_city.groups if g.kind is DeliveryKind.CUSTOMER_GROUP)
    assert (result.status, result.listed, result.changed, result.unchanged) == (
        "done",
        customer,
        0,
        customer,
    )
    assert (result.failed, result.unplaced, result.missing) == (0, 0, ())
    assert await small_registry.dump() == before
    again = await syncer(small_registry, w).run()
    assert (again.changed, again.unchanged) == (0, customer)
    importer = Importer(small_registry, Placer(small_registry, DEFAULT_RULE))
    reimport = await importer.import_file(tmp_path / "city.csv")
    assert (reimport.changed, reimport.unchanged) == (0, len(small_city.groups))
    assert await small_registry.dump() == before


async def test_sync_alone_places_every_group_by_its_name(
    small_registry: Registry,
    registry: Registry,
    small_city: City,
    wecom: Callable[..., Any],
    tmp_path: Path,
    redis: aioredis.Redis,
) -> None:
    imported = customer_groups(await small_registry.dump(), tags=False)  # WeCom has no tags
    await redis.flushdb()
    await import_tree_and_people(registry, small_city, tmp_path / "fresh")
    w: WeCom = await wecom()
    load_into_simulator(small_city, w.sim)
    result = await syncer(registry, w).run()
    assert result.changed == len(imported) and result.unplaced == 0
    assert customer_groups(await registry.dump()) == imported
    assert await registry.unplaced() == []


async def test_sync_resumes_where_it_was_interrupted(
    registry: Registry,
    small_city: City,
    wecom: Callable[..., Any],
    tmp_path: Path,
) -> None:
    await import_tree_and_people(registry, small_city, tmp_path)
    w: WeCom = await wecom()
    load_into_simulator(small_city, w.sim)
    first = await syncer(registry, w, page_size=50).run(max_pages=2)
    assert (first.status, first.listed, first.pages) == ("running", 100, 2)
    w.sim.set_faults(FaultConfig(rate=1.0, weights={"5xx": 1.0}, apis=frozenset({GET})))
    with pytest.raises(TransientError):
        await syncer(registry, w, page_size=50).run()
    assert (await syncer(registry, w).state()).status == "running"
    w.sim.set_faults()
    done = await syncer(registry, w, page_size=50).run()
    customer = sum(1 for g in small_city.groups if g.kind is DeliveryKind.CUSTOMER_GROUP)
    assert done.resumed and done.status == "done" and done.listed == customer
    assert len(await registry.groups_under("141100")) == customer
    assert w.sim.calls("externalcontact/groupchat/list") == 2 + 1 + (customer - 100 + 49) // 50


async def test_only_one_sync_runs_at_a_time(
    small_registry: Registry,
    wecom: Callable[..., Any],
    redis: aioredis.Redis,
) -> None:
    w: WeCom = await wecom()
    await redis.set(small_registry.keys.sync_lock(), "another-process")
    with pytest.raises(SyncBusyError):
        await syncer(small_registry, w).run()


async def test_too_many_visible_members_lists_per_owner(
    small_registry: Registry,
    small_city: City,
    wecom: Callable[..., Any],
) -> None:
    w: WeCom = await wecom(groupchat_list_unfiltered_max_members=100)
    load_into_simulator(small_city, w.sim)
    before = await small_registry.dump()
    result = await syncer(small_registry, w).run()
    customer = sum(1 for g in small_city.groups if g.kind is DeliveryKind.CUSTOMER_GROUP)
    assert w.sim.errors_answered(81017) == 1
    assert (result.listed, result.changed, result.missing) == (customer, 0, ())
    assert await small_registry.dump() == before


async def test_sync_applies_changes_made_without_events(
    small_registry: Registry,
    small_city: City,
    wecom: Callable[..., Any],
) -> None:
    w: WeCom = await wecom()
    load_into_simulator(small_city, w.sim)
    groups = [g for g in small_city.groups if g.kind is DeliveryKind.CUSTOMER_GROUP]
    moved, transferred, gone = groups[0], groups[1], groups[2]
    target = next(g for g in groups if g.node != moved.node and g.node.count("-") == 0)
    w.sim.rename_group(moved.chat_id, target.name)  # the name of another village's group
    w.sim.transfer_group(transferred.chat_id, "wg99999")
    w.sim.change_members(transferred.chat_id, +7)
    w.sim.dismiss_group(gone.chat_id)
    result = await syncer(small_registry, w).run()
    assert result.changed == 2 and result.missing == (gone.chat_id,)
    now = await small_registry.group(moved.chat_id)  # renamed, but a rename is a request:
    assert now is not None and (now.name, now.node) == (target.name, moved.node)  # it stays
    [held] = await moves.requests(small_registry)
    assert (held.chat_id, held.current, held.to) == (moved.chat_id, moved.node, target.node)
    owner = await small_registry.group(transferred.chat_id)
    assert owner is not None and owner.owner == "wg99999"
    assert owner.member_count == transferred.member_count + 7


async def test_owner_filter_syncs_one_owners_groups(
    small_registry: Registry,
    small_city: City,
    wecom: Callable[..., Any],
) -> None:
    w: WeCom = await wecom()
    load_into_simulator(small_city, w.sim)
    owner = small_city.groups[0].owner
    mine = [
        g for g in small_city.groups if g.owner == owner and g.kind is DeliveryKind.CUSTOMER_GROUP
    ]
    result = await syncer(small_registry, w).run(owners=[owner])
    assert result.listed == len(mine) and result.missing == ()
