"""The Redis store: idempotent upserts, subtree indexes, history, people (real redis-server)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from registry.models import DeliveryKind, Group, GroupState, Level, Node, Person, Role
from registry.store import Registry, RegistryError, UnknownNodeError
from tests.registry.conftest import TREE, assert_sums_agree

B1 = "141181001001-G01-B001"  # 东关社区 1号楼
B3 = "141181001001-G02-B003"  # 东关社区 3号楼
LONGFENG = "141102001001-G01-B001"  # 离石区 龙凤社区 1号楼
CG, AC, WH = DeliveryKind.CUSTOMER_GROUP, DeliveryKind.APPCHAT, DeliveryKind.WEBHOOK


def group(
    chat_id: str, node: str, kind: DeliveryKind = CG, members: int = 50, **kw: object
) -> Group:
    return Group(chat_id, f"群{chat_id}", kind, node, "gw1", members, **kw)  # type: ignore[arg-type]


async def test_nodes_path_children_and_names(tree: Registry) -> None:
    assert [n.name for n in await tree.path(B3)] == [
        "吕梁市",
        "孝义市",
        "新义街道",
        "东关社区",
        "东关二网格",
        "3号楼",
    ]
    assert [n.code for n in await tree.children("141181001001")] == [
        "141181001001-G01",
        "141181001001-G02",
    ]
    assert await tree.is_within(B3, "141181") and not await tree.is_within(B3, "141102")
    assert {n.code for n in await tree.find_nodes("1号楼")} == {B1, LONGFENG}
    assert [n.code for n in await tree.find_nodes("孝义市/1号楼")] == [B1]
    assert [n.code for n in await tree.find_nodes("离石区 / 龙凤社区 / 1号楼")] == [LONGFENG]
    assert await tree.find_nodes("孝义市/龙凤社区") == []
    assert await tree.path("999999") == []


async def test_upsert_node_is_idempotent_and_checks_its_parent(tree: Registry) -> None:
    assert await tree.upsert_node(TREE[3]) is False
    assert await tree.upsert_node(replace(TREE[3], name="东关新社区")) is True
    assert [n.code for n in await tree.find_nodes("东关新社区")] == [TREE[3].code]
    assert await tree.find_nodes("东关社区") == []
    with pytest.raises(UnknownNodeError):
        await tree.upsert_node(Node("141181999", "无主街道", Level.TOWNSHIP, "141199"))
    with pytest.raises(RegistryError):  # a node cannot hang below its own descendant
        await tree.upsert_node(replace(TREE[1], parent=TREE[2].code))


async def test_upsert_group_reports_change_and_keeps_indexes(tree: Registry) -> None:
    g = group("wr1", B1, members=120)
    assert await tree.upsert_group(g) is True
    assert await tree.upsert_group(g) is False
    assert await tree.upsert_group(g._replace(updated_at=123.0)) is False  # not content
    stored = await tree.group("wr1")
    assert stored is not None and stored.updated_at > 0
    assert stored._replace(updated_at=0.0) == g
    for code in ("141100", "141181", "141181001", "141181001001", "141181001001-G01", B1):
        assert [x.chat_id for x in await tree.groups_under(code)] == ["wr1"]
        assert (await tree.breakdown(code))[CG] == 1
        assert (await tree.members_breakdown(code))[CG] == 120
    assert await tree.groups_under("141102") == []
    assert await tree.breakdown("141181001001-G02") == {CG: 0, AC: 0, WH: 0}


async def test_breakdown_by_kind_over_a_subtree(tree: Registry) -> None:
    await tree.upsert_groups(
        [
            group("wr1", B1),
            group("wr2", B3, members=70),
            group("ac1", B3, AC, members=300),
            group("wb1", "141181101201", WH, webhook_key="k1"),
            group("wr9", LONGFENG),
        ]
    )
    assert await tree.breakdown("141181") == {CG: 2, AC: 1, WH: 1}
    assert await tree.breakdown("141100") == {CG: 3, AC: 1, WH: 1}
    assert await tree.members_breakdown("141181001001") == {CG: 120, AC: 300, WH: 0}
    assert [g.chat_id for g in await tree.groups_under("141181001001-G02")] == ["ac1", "wr2"]


async def test_moving_a_group_moves_it_between_subtrees(tree: Registry) -> None:
    await tree.upsert_group(group("wr1", B1))
    assert await tree.upsert_group(group("wr1", LONGFENG)) is True
    assert await tree.groups_under("141181") == []
    assert [g.chat_id for g in await tree.groups_under("141102")] == ["wr1"]
    assert (await tree.breakdown("141181"))[CG] == 0
    assert (await tree.breakdown("141100"))[CG] == 1
    [created, moved] = await tree.history("wr1")
    assert (created.what, moved.what) == ("created", "moved")
    assert moved.changes == {"node": {"from": B1, "to": LONGFENG}}


async def test_dismissed_group_is_no_target_but_keeps_history(tree: Registry) -> None:
    await tree.upsert_group(group("wr1", B1), actor="import", source="a.csv")
    assert await tree.dismiss_group("wr1", 1000.0, actor="wecom", source="evt-1") is True
    assert await tree.dismiss_group("wr1", 2000.0) is False  # already dismissed
    assert await tree.groups_under("141181") == []
    assert await tree.target_groups(["141100"]) == []
    assert (await tree.breakdown("141100"))[CG] == 0
    [kept] = await tree.groups_under("141181", include_dismissed=True)
    assert (kept.state, kept.dismissed_at) == (GroupState.DISMISSED, 1000.0)
    history = await tree.history("wr1")
    assert [(h.what, h.actor, h.source) for h in history] == [
        ("created", "import", "a.csv"),
        ("dismissed", "wecom", "evt-1"),
    ]
    assert history[1].changes["state"] == {"from": "active", "to": "dismissed"}
    assert history[0].at <= history[1].at


async def test_member_count_changes_are_counted_not_logged(tree: Registry) -> None:
    await tree.upsert_group(group("wr1", B1, members=10))
    assert await tree.upsert_group(group("wr1", B1, members=11)) is True
    assert (await tree.members_breakdown("141100"))[CG] == 11
    assert [h.what for h in await tree.history("wr1")] == ["created"]


async def test_unknown_node_is_refused_and_unplaced_groups_are_listed(tree: Registry) -> None:
    with pytest.raises(UnknownNodeError):
        await tree.upsert_group(group("wr1", "141181001001-G09"))
    assert await tree.group("wr1") is None
    await tree.upsert_group(group("wr2", ""), unplaced_reason="找不到", candidates=["a", "b"])
    [unplaced] = await tree.unplaced()
    assert (unplaced.chat_id, unplaced.reason, unplaced.candidates) == (
        "wr2",
        "找不到",
        ("a", "b"),
    )
    assert await tree.target_groups(["141100"]) == []
    await tree.upsert_group(group("wr2", B1))
    assert await tree.unplaced() == []


async def test_target_groups_with_tags_and_exclusions(tree: Registry) -> None:
    await tree.upsert_groups(
        [
            group("wr1", B1, tags=("楼栋",)),
            group("wr2", B3, tags=("楼栋", "商户")),
            group("wr3", "141181101201", tags=("村",)),
            group("wr4", LONGFENG, tags=("楼栋",)),
        ]
    )
    # pack by pack (龙凤社区 141102001001 before 东关社区 141181001001 and 下堡村)
    ids = [g.chat_id for g in await tree.target_groups(["141181", "141102"])]
    assert ids == ["wr4", "wr1", "wr2", "wr3"]
    ids = [g.chat_id for g in await tree.target_groups(["141100"], tags=["商户", "村"])]
    assert ids == ["wr2", "wr3"]
    ids = [g.chat_id for g in await tree.target_groups(["141100"], exclude=["141181001", "wr4"])]
    assert ids == ["wr3"]
    ids = [g.chat_id for g in await tree.target_groups(["141181001001"], exclude=[B1])]
    assert ids == ["wr2"]
    ids = [g.chat_id for g in await tree.target_groups([B1, "141181101201", B3])]
    assert ids == ["wr1", "wr2", "wr3"]
    ids = [g.chat_id for g in await tree.target_groups([B1, "141181001001"], exclude=["wr2"])]
    assert ids == ["wr1"]


async def test_a_village_selects_its_own_groups_and_its_grids(tree: Registry) -> None:
    """A 村社区's own groups sit in its township's pack, beside its neighbours' own groups;
    selecting or excluding the village takes exactly its share of that pack."""
    village, grid = "141181001001", "141181001001-G01"
    await tree.upsert_groups([group("wr1", village), group("wr2", B1), group("wr3", B3),
                              group("wr4", "141181001"), group("wr5", "141181101201")])
    newyi = await tree.redis.get(tree.shard_keys("141181001").pack("141181001"))  # 新义街道's pack
    assert sorted(row.split("\x1f")[0] for row in newyi.split("\n")) == ["wr1", "wr4"]
    assert [g.chat_id for g in await tree.groups_under(village)] == ["wr1", "wr2", "wr3"]
    assert [g.chat_id for g in await tree.groups_under(grid)] == ["wr2"]
    ids = [g.chat_id for g in await tree.target_groups(["141181"], exclude=[village])]
    assert ids == ["wr4", "wr5"]
    ids = [g.chat_id for g in await tree.target_groups(["141181001"], exclude=[grid])]
    assert ids == ["wr1", "wr4", "wr3"]
    ids = [g.chat_id for g in await tree.target_groups([village, "141181101201"])]
    assert ids == ["wr1", "wr2", "wr3", "wr5"]  # by pack code: 新义街道, its grids, 梧桐镇
    await tree.dismiss_group("wr1", 1.0)
    assert [g.chat_id for g in await tree.groups_under(village)] == ["wr2", "wr3"]
    await assert_sums_agree(tree)


async def test_concurrent_partial_updates_do_not_undo_each_other(tree: Registry) -> None:
    await tree.upsert_group(group("wr1", B1, members=10))

    async def set_owner(i: int) -> None:
        await tree.update_group("wr1", lambda g: g._replace(owner=f"o{i}") if g else None)

    async def bump(_: int) -> None:
        await tree.update_group(
            "wr1", lambda g: g._replace(member_count=g.member_count + 1) if g else None
        )

    await asyncio.gather(*(f(i) for i in range(10) for f in (set_owner, bump)))
    stored = await tree.group("wr1")
    assert stored is not None and stored.member_count == 20 and stored.owner.startswith("o")
    assert (await tree.members_breakdown("141100"))[CG] == 20


async def test_reparenting_a_node_moves_its_groups(tree: Registry) -> None:
    await tree.upsert_groups([group("wr1", B3), group("wr2", B1), group("wr3", "141181001001")])
    await tree.dismiss_group("wr2", 5.0)
    await tree.upsert_node(replace(TREE[7], parent="141102001001"))  # 东关二网格 → 龙凤社区
    assert [g.chat_id for g in await tree.groups_under("141102")] == ["wr1"]
    assert [g.chat_id for g in await tree.groups_under("141181")] == ["wr3"]
    assert (await tree.breakdown("141181"))[CG] == 1
    # a whole 村社区 moves to another 乡镇街道, dismissed groups with it
    await tree.upsert_node(replace(TREE[3], parent="141102001"))  # 东关社区 → 滨河街道
    # pack by pack: 滨河街道's (wr3, on 东关社区 and on no grid), then 东关二网格's (wr1)
    assert [g.chat_id for g in await tree.groups_under("141102")] == ["wr3", "wr1"]
    assert await tree.groups_under("141181", include_dismissed=True) == []
    # the active groups, then the dismissed ones
    assert [g.chat_id for g in await tree.groups_under("141102", include_dismissed=True)] == [
        "wr3",
        "wr1",
        "wr2",
    ]
    assert await tree.breakdown("141181") == {CG: 0, AC: 0, WH: 0}
    assert (await tree.breakdown("141100"))[CG] == 2
    await assert_sums_agree(tree)


async def test_a_node_changing_level_reindexes_its_groups(tree: Registry) -> None:
    # 东关一网格 is re-classified as a building (same parent): its groups, now on no grid,
    # leave the grid's pack for the pack of 新义街道
    await tree.upsert_groups([group("wr1", B1), group("wr2", B3)])
    await tree.upsert_node(replace(TREE[4], level=Level.BUILDING))
    assert [g.chat_id for g in await tree.groups_under(TREE[4].code)] == ["wr1"]
    # wr1 now in 新义街道's pack, then wr2 in the pack of 东关二网格 (a longer code)
    assert [g.chat_id for g in await tree.groups_under("141181001001")] == ["wr1", "wr2"]
    assert await tree.redis.exists(tree.shard_keys("141181001").pack(TREE[4].code)) == 0
    await tree.dismiss_group("wr1", 1.0)
    assert [g.chat_id for g in await tree.groups_under("141181001001")] == ["wr2"]
    assert await tree.groups_under(TREE[4].code) == []
    await assert_sums_agree(tree)


async def test_people_coverage_and_nearest_staff(tree: Registry) -> None:
    await tree.upsert_people(
        [
            Person("mj1", "李警官", Role.OFFICER, ("141181001001",)),
            Person("fj1", "赵辅警", Role.AUXILIARY, ("141181001001-G01",)),
            Person("gw1", "王网格", Role.GRID_WORKER, ("141181001001-G01",)),
            Person("sv1", "张主任", Role.SUPERVISOR, ("141181001",)),
        ]
    )
    assert (
        await tree.upsert_person(Person("gw1", "王网格", Role.GRID_WORKER, ("141181001001-G01",)))
        is False
    )
    assert await tree.covers("gw1", B1) and not await tree.covers("gw1", B3)
    assert await tree.covers("sv1", B3) and not await tree.covers("nobody", B3)
    assert [p.userid for p in await tree.staff_for(B1, {Role.OFFICER, Role.AUXILIARY})] == ["fj1"]
    assert [p.userid for p in await tree.staff_for(B3, {Role.OFFICER, Role.AUXILIARY})] == ["mj1"]
    assert [p.userid for p in await tree.staff_for(B3, {Role.SUPERVISOR})] == ["sv1"]
    assert await tree.staff_for(LONGFENG, {Role.OFFICER}) == []
    await tree.upsert_person(Person("gw1", "王网格", Role.GRID_WORKER, ("141181001001-G02",)))
    assert await tree.covers("gw1", B3) and not await tree.covers("gw1", B1)
    with pytest.raises(UnknownNodeError):
        await tree.upsert_person(Person("x", "某人", Role.GRID_WORKER, ("141181009",)))


def test_decoded_rows_equal_constructed_groups() -> None:
    from registry.codec import ROW, US, decode_group, decode_rows, group_content

    group = Group("wr1", "孝义市-新义街道-城南社区-3号楼", DeliveryKind.WEBHOOK, "141181001001",
                  "wg1", 80, GroupState.DISMISSED, "key-1", ("重点", "防汛"), 12.5, 9.25)
    other = Group("wr2", "孝义市-新义街道-城南社区-4号楼", DeliveryKind.CUSTOMER_GROUP,
                  "141181001001", "wg2", 7, updated_at=3.0)
    decoded = decode_group(group_content(group) + US + repr(group.updated_at))
    assert decoded == group and hash(decoded) == hash(group)
    assert type(decoded) is Group and decoded.kind is DeliveryKind.WEBHOOK
    with pytest.raises(AttributeError):
        decoded.name = "x"  # type: ignore[misc]
    blob = ROW.join(group_content(g) + US + repr(g.updated_at) for g in (group, other))
    assert decode_rows(blob) == [group, other]
    with pytest.raises(ValueError, match="multiple"):
        decode_rows(blob + US + "extra")
