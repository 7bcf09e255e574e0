"""Placement by the naming rule: exact matches only; anything else is unplaced with a reason."""

from __future__ import annotations

import pytest

from registry.models import Level, Node
from registry.placement import NamingRule, NamingRuleError, Placer
from registry.store import Registry

RULE = "{county}-{township}-{village}-{building}"


def test_rule_splits_names_longest_first() -> None:
    rule = NamingRule.parse(RULE)
    assert rule.levels == (Level.COUNTY, Level.TOWNSHIP, Level.VILLAGE, Level.BUILDING)
    assert rule.split("孝义市-新义街道-东关社区-3号楼") == [
        (Level.COUNTY, "孝义市"),
        (Level.TOWNSHIP, "新义街道"),
        (Level.VILLAGE, "东关社区"),
        (Level.BUILDING, "3号楼"),
    ]
    assert rule.split("孝义市 － 梧桐镇 — 下堡村") == [
        (Level.COUNTY, "孝义市"),
        (Level.TOWNSHIP, "梧桐镇"),
        (Level.VILLAGE, "下堡村"),
    ]
    assert rule.split("东关社区3号楼业主群") == [(Level.COUNTY, "东关社区3号楼业主群")]
    assert NamingRule.parse("【{village}】{building}").split("【东关社区】3号楼") == [
        (Level.VILLAGE, "东关社区"),
        (Level.BUILDING, "3号楼"),
    ]
    assert NamingRule.parse("【{village}】{building}").split("东关社区3号楼") is None


def test_rule_formats_names_it_can_split() -> None:
    rule = NamingRule.parse(RULE)
    parts = {Level.COUNTY: "孝义市", Level.TOWNSHIP: "梧桐镇", Level.VILLAGE: "下堡村"}
    assert rule.format(parts) == "孝义市-梧桐镇-下堡村"
    assert rule.split(rule.format(parts)) == list(parts.items())


@pytest.mark.parametrize(
    "text", ["{county}{village}", "{village}-{county}", "{county}-{street}", "没有占位符"]
)
def test_unusable_rules_are_refused(text: str) -> None:
    with pytest.raises(NamingRuleError):
        NamingRule.parse(text)


async def test_placement_resolves_exact_names_through_skipped_levels(tree: Registry) -> None:
    placer = Placer(tree, RULE)
    assert (await placer.place("孝义市-新义街道-东关社区-3号楼")).node == "141181001001-G02-B003"
    assert (
        await placer.place("孝义市-新义街道-东关社区-3号楼居民群")
    ).node == "141181001001-G02-B003"
    assert (await placer.place("孝义市-梧桐镇-下堡村")).node == "141181101201"
    assert (await placer.place("离石区-滨河街道-龙凤社区-1号楼")).node == "141102001001-G01-B001"


async def test_unresolvable_names_are_never_guessed(tree: Registry) -> None:
    placer = Placer(tree, RULE)
    wrong_county = await placer.place("离石区-新义街道-东关社区-3号楼")
    assert (
        wrong_county.node == ""
        and "「离石区」下找不到名为「新义街道」的乡镇街道" in wrong_county.reason
    )
    no_building = await placer.place("孝义市-新义街道-东关社区-9号楼")
    assert no_building.node == "" and "9号楼" in no_building.reason
    off_rule = await placer.place("东关社区3号楼业主群")
    assert off_rule.node == "" and off_rule.reason


async def test_ambiguous_names_list_their_candidates(tree: Registry) -> None:
    # a second "3号楼" in the same community, on the other grid
    await tree.upsert_node(
        Node("141181001001-G01-B009", "3号楼", Level.BUILDING, "141181001001-G01")
    )
    placement = await Placer(tree, RULE).place("孝义市-新义街道-东关社区-3号楼")
    assert placement.node == ""
    assert set(placement.candidates) == {"141181001001-G01-B009", "141181001001-G02-B003"}
    assert "2 个名为「3号楼」的楼栋" in placement.reason
