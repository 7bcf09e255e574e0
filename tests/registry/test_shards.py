"""The registry's shards: one slot per 乡镇街道 beside a small index (real redis-server).

A group lives in the shard of its 乡镇街道; moving it to another 乡镇街道 (a re-placement, its node
moved, a write that raced a tree change) leaves it in exactly one shard, and a move cut
short at any step reads as if it had not happened until the next write finishes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.cluster import key_slot
from redis.commands.core import AsyncScript

from bot.batching import Call
from bot.keys import Keys
from registry.codec import decode_group
from registry.models import DeliveryKind, Group, Person, Role
from registry.shards import Route
from registry.store import Registry
from tests.registry.conftest import TREE, assert_sums_agree

B1 = "141181001001-G01-B001"  # 孝义市 东关社区 1号楼
LONGFENG = "141102001001-G01-B001"  # 离石区 龙凤社区 1号楼
XIAOYI, LISHI = "141181", "141102"  # 县区
XINYI, BINHE = "141181001", "141102001"  # 新义街道 and 滨河街道: shards


def group(chat_id: str, node: str, **kw: object) -> Group:
    return Group(chat_id, f"群{chat_id}", DeliveryKind.CUSTOMER_GROUP, node, "gw1", 50,
                 **kw)  # type: ignore[arg-type]


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


async def test_groups_sit_in_their_township_shard_and_the_tree_in_the_index(
    tree: Registry, redis: aioredis.Redis
) -> None:
    await tree.upsert_groups([group("wr1", B1), group("wr2", LONGFENG), group("wr3", ""),
                              group("wr4", XIAOYI)])  # wr4 hangs on the 县区 itself
    await tree.upsert_person(Person("gw1", "王网格", Role.GRID_WORKER, ("141181001001-G01",)))
    assert await tree.all_shards() == ["-", BINHE, XIAOYI, XINYI]
    keys = [k async for k in redis.scan_iter("gridbot:*")]
    tags = {k[k.index("{"):k.index("}") + 1] for k in keys}
    assert tags == {"{reg}", "{reg:141181001}", "{reg:141102001}", "{reg:141181}", "{reg:-}"}
    for tag in tags:  # a shard is one slot
        assert len({slot(k) for k in keys if tag in k}) == 1
    index = {k.split("}:")[1].split(":")[0] for k in keys if "{reg}" in k}
    assert index <= {"nodes", "kids", "name", "level", "people", "staff", "role", "gshard",
                     "shards"}
    assert await redis.hget(tree.shard_keys(XINYI).groups(), "wr1")
    assert await redis.hget(tree.shard_keys(BINHE).groups(), "wr1") is None
    # a query under one 乡镇街道 reads its shard; above, the shards below are summed
    assert await tree.shards_for([B1]) == [XINYI]
    assert await tree.shards_for([XIAOYI]) == [XIAOYI, XINYI]
    assert await tree.shards_for(["141100"]) == ["-", BINHE, XIAOYI, XINYI]
    assert (await tree.breakdown("141100"))[DeliveryKind.CUSTOMER_GROUP] == 3
    assert (await tree.breakdown(XIAOYI))[DeliveryKind.CUSTOMER_GROUP] == 2
    assert [g.chat_id for g in await tree.groups_under("141100")] == ["wr2", "wr4", "wr1"]
    assert [g.chat_id for g in await tree.groups_under(XIAOYI)] == ["wr4", "wr1"]
    assert [u.chat_id for u in await tree.unplaced()] == ["wr3"]
    assert [g.chat_id for g in await tree.groups_named("群wr2")] == ["wr2"]


async def test_a_group_moving_county_leaves_its_old_shard_with_its_history(
    tree: Registry, redis: aioredis.Redis
) -> None:
    await tree.upsert_group(group("wr1", B1))
    await tree.update_group("wr1", lambda g: g and g._replace(node=LONGFENG))
    assert await redis.hget(tree.shard_keys(XINYI).groups(), "wr1") is None
    assert await redis.exists(tree.shard_keys(XINYI).history("wr1")) == 0
    assert [g.chat_id for g in await tree.groups_under(LISHI)] == ["wr1"]
    assert await tree.groups_under(XIAOYI) == []
    assert (await tree.breakdown(XIAOYI))[DeliveryKind.CUSTOMER_GROUP] == 0
    assert [h.what for h in await tree.history("wr1")] == ["created", "moved"]
    assert await redis.hget(tree.keys.group_shards(), "wr1") == BINHE
    assert await redis.smembers(tree.keys.moving()) == set()
    await assert_sums_agree(tree)


class Crash(Exception):
    pass


class CrashingRegistry(Registry):
    """Stops a move before dropping the old copy, as a killed process would."""

    async def _drop(self, shard: str, chat_id: str) -> None:
        raise Crash


async def test_a_move_cut_short_reads_from_the_home_shard_until_a_write_finishes_it(
    tree: Registry, redis: aioredis.Redis
) -> None:
    await tree.upsert_group(group("wr1", B1, tags=("旧",)))
    await tree.upsert_group(group("wr2", B1))
    crashing = CrashingRegistry(redis, Keys(tree.keys.keys.prefix), tree.clock)
    with pytest.raises(Crash):
        await crashing.upsert_group(group("wr1", LONGFENG, tags=("新",)))
    # both shards hold a copy; gshard names the new one first: readers see the new record
    assert await redis.hget(tree.keys.group_shards(), "wr1") == f"{BINHE} {XINYI}"
    for reader in (tree, Registry(redis, Keys(tree.keys.keys.prefix), tree.clock)):
        assert (await reader.group("wr1")).tags == ("新",)  # type: ignore[union-attr]
        assert [g.chat_id for g in await reader.groups_under("141100")] == ["wr1", "wr2"]
        assert [g.chat_id for g in await reader.groups_under(XIAOYI)] == ["wr2"]
        assert [g.chat_id for g in await reader.all_groups()] == ["wr1", "wr2"]
    # the next write of the group finishes the move
    await tree.update_group("wr1", lambda g: g and g._replace(member_count=9))
    assert await redis.hget(tree.keys.group_shards(), "wr1") == BINHE
    assert await redis.hget(tree.shard_keys(XINYI).groups(), "wr1") is None
    assert await redis.smembers(tree.keys.moving()) == set()
    assert [h.what for h in await tree.history("wr1")] == ["created", "moved"]
    await assert_sums_agree(tree)


class CrashBeforeWriteRegistry(Registry):
    """Stops a move after gshard named the new shard, before the new shard got the group."""

    async def _write_in(self, route: Route, args: list[str | int]) -> tuple[int, str]:
        if args[12] == "move":
            raise Crash
        return await super()._write_in(route, args)


async def test_a_move_cut_short_before_the_write_keeps_the_old_record(
    tree: Registry, redis: aioredis.Redis
) -> None:
    await tree.upsert_group(group("wr1", B1))
    crashing = CrashBeforeWriteRegistry(redis, Keys(tree.keys.keys.prefix), tree.clock)
    with pytest.raises(Crash):
        await crashing.upsert_group(group("wr1", LONGFENG))
    assert (await tree.group("wr1")).node == B1  # type: ignore[union-attr]
    assert [g.chat_id for g in await tree.groups_under(XIAOYI)] == ["wr1"]
    assert await tree.groups_under(LISHI) == []
    await tree.upsert_group(group("wr1", LONGFENG))
    assert [g.chat_id for g in await tree.groups_under("141100")] == ["wr1"]
    assert [g.chat_id for g in await tree.groups_under(LISHI)] == ["wr1"]
    await assert_sums_agree(tree)


class RacingRegistry(Registry):
    """Another process re-parents a node between this write's route and its write."""

    racer: Registry

    async def _write_in(self, route: Route, args: list[str | int]) -> tuple[int, str]:
        racer, self.racer = self.racer, None  # type: ignore[assignment]
        if racer is not None:
            await racer.upsert_node(replace(TREE[7], parent="141102001001"))  # → 龙凤社区
        return await super()._write_in(route, args)


async def test_a_write_racing_a_tree_change_lands_on_the_new_path(
    tree: Registry, redis: aioredis.Redis
) -> None:
    b3 = "141181001001-G02-B003"  # 东关二网格 3号楼, about to move to 离石区
    racing = RacingRegistry(redis, Keys(tree.keys.keys.prefix), tree.clock)
    racing.racer = tree
    await racing.upsert_group(group("wr1", b3))
    assert [n.code for n in await tree.path(b3)][:2] == ["141100", LISHI]
    assert [g.chat_id for g in await tree.groups_under(LISHI)] == ["wr1"]
    assert await tree.groups_under(XIAOYI) == []
    assert await redis.hget(tree.keys.group_shards(), "wr1") == BINHE
    assert await redis.hget(tree.shard_keys(XINYI).groups(), "wr1") is None
    await assert_sums_agree(tree)


async def test_a_group_twice_in_one_batch_ends_in_one_shard(
    tree: Registry, redis: aioredis.Redis
) -> None:
    await tree.upsert_groups([group("wr1", B1), group("wr2", B1), group("wr1", LONGFENG)])
    assert await redis.hget(tree.keys.group_shards(), "wr1") == BINHE
    assert await redis.hget(tree.shard_keys(XINYI).groups(), "wr1") is None
    assert [g.chat_id for g in await tree.groups_under("141100")] == ["wr1", "wr2"]
    assert [h.what for h in await tree.history("wr1")] == ["created", "moved"]
    await assert_sums_agree(tree)


class InterleavedRegistry(Registry):
    """Runs `meanwhile` once, right after this process's move wrote the new shard."""

    meanwhile: Callable[[], Awaitable[None]] | None = None

    async def _write_in(self, route: Route, args: list[str | int]) -> tuple[int, str]:
        result = await super()._write_in(route, args)
        if args[12] == "move" and self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            await meanwhile()
        return result


async def test_a_write_landing_in_the_old_home_during_a_move_is_kept(
    tree: Registry, redis: aioredis.Redis
) -> None:
    """Another process read the group and routed its write before the move began; its
    write lands in the old home while the group moves. The move sees the old copy changed,
    undoes itself and reads again: the record ends with both changes, in one shard."""
    await tree.upsert_group(group("wr1", B1))
    other = Registry(redis, Keys(tree.keys.keys.prefix), tree.clock)
    [stored] = await other._rows(["wr1"])
    assert stored is not None
    counted = decode_group(stored)._replace(member_count=77)
    [route] = await other._routes([counted])
    assert route.held == (XINYI,) and not route.moves
    args = other._group_args(counted, "sync", "", "match", stored, "", route)

    async def lands() -> None:
        assert (await other._write_in(route, args))[0] == 1

    mover = InterleavedRegistry(redis, Keys(tree.keys.keys.prefix), tree.clock)
    mover.meanwhile = lands
    await mover.update_group("wr1", lambda g: g and g._replace(node=LONGFENG))

    moved = await tree.group("wr1")
    assert moved is not None and (moved.node, moved.member_count) == (LONGFENG, 77)
    assert await redis.hget(tree.keys.group_shards(), "wr1") == BINHE
    assert await redis.hget(tree.shard_keys(XINYI).groups(), "wr1") is None
    assert await redis.smembers(tree.keys.moving()) == set()
    assert [h.what for h in await tree.history("wr1")] == ["created", "moved"]
    await assert_sums_agree(tree)


async def test_two_moves_of_one_group_take_turns_and_keep_both_changes(
    tree: Registry, redis: aioredis.Redis
) -> None:
    await tree.upsert_group(group("wr1", B1))
    second = Registry(redis, Keys(tree.keys.keys.prefix), tree.clock)
    started: list[asyncio.Task[object]] = []

    async def another_move() -> None:
        started.append(asyncio.create_task(second.update_group(
            "wr1", lambda g: g and g._replace(node=XIAOYI, member_count=88))))
        await asyncio.sleep(0.05)  # it runs now, and must wait for this move's lease
        assert not started[0].done()

    first = InterleavedRegistry(redis, Keys(tree.keys.keys.prefix), tree.clock)
    first.meanwhile = another_move
    await first.update_group("wr1", lambda g: g and g._replace(node=LONGFENG, tags=("一",)))
    await started[0]

    final = await tree.group("wr1")
    assert final is not None
    assert (final.node, final.member_count, final.tags) == (XIAOYI, 88, ("一",))
    assert await redis.hget(tree.keys.group_shards(), "wr1") == XIAOYI
    for shard in (XINYI, BINHE):
        assert await redis.hget(tree.shard_keys(shard).groups(), "wr1") is None
    assert await redis.smembers(tree.keys.moving()) == set()
    assert await redis.exists(tree.keys.move_lease("wr1")) == 0
    await assert_sums_agree(tree)


class RoutedThenPausedRegistry(Registry):
    """Runs `meanwhile` once, after this write read its route and before it writes (one
    write, or a batch's pipelined writes)."""

    meanwhile: Callable[[], Awaitable[None]] | None = None

    async def _pause(self) -> None:
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            await meanwhile()

    async def _write_in(self, route: Route, args: list[str | int]) -> tuple[int, str]:
        await self._pause()
        return await super()._write_in(route, args)

    async def _pipelined_calls(self, script: AsyncScript, calls: Sequence[Call],
                               batch: int) -> list[Any]:
        await self._pause()
        return await super()._pipelined_calls(script, calls, batch)


@pytest.mark.parametrize("batch", [False, True], ids=["one", "batch"])
async def test_a_write_routed_before_a_whole_move_leaves_no_stray_copy(
    tree: Registry, redis: aioredis.Redis, batch: bool
) -> None:
    """An unconditional write (sync, import) routes to the old shard; a whole move runs
    before it writes; it then creates a row the index does not name. It drops that row and
    routes again: the group is in one shard, with the later write's content."""
    await tree.upsert_group(group("wr1", B1))
    writer = RoutedThenPausedRegistry(redis, Keys(tree.keys.keys.prefix), tree.clock)

    async def whole_move() -> None:
        await tree.update_group("wr1", lambda g: g and g._replace(node=LONGFENG))

    writer.meanwhile = whole_move
    later = group("wr1", B1, tags=("同步",))
    if batch:
        await writer.upsert_groups([later, group("wr2", B1)])
    else:
        await writer.upsert_group(later)

    final = await tree.group("wr1")
    assert final is not None and (final.node, final.tags) == (B1, ("同步",))
    assert await redis.hget(tree.keys.group_shards(), "wr1") == XINYI
    assert await redis.hget(tree.shard_keys(BINHE).groups(), "wr1") is None
    assert [g.chat_id for g in await tree.groups_under("141100")].count("wr1") == 1
    await assert_sums_agree(tree)
