"""The synthetic 吕梁市: real divisions and counts, exact totals, deterministic by seed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bot.wecom.simulator import SimConfig, WeComSimulator
from registry import codes
from registry.city import City
from registry.divisions import COUNTIES
from registry.models import DeliveryKind, Level, Role
from registry.placement import NamingRule
from registry.synthetic import (
    DEFAULT_RULE,
    generate_city,
    load_csv_into_simulator,
    load_into_simulator,
)

CG, AC, WH = DeliveryKind.CUSTOMER_GROUP, DeliveryKind.APPCHAT, DeliveryKind.WEBHOOK


@pytest.fixture(scope="module")
def city() -> City:
    return generate_city(seed=11)


def test_the_whole_city_has_the_real_divisions_and_the_target_totals(city: City) -> None:
    levels = Counter(n.level for n in city.nodes)
    assert levels[Level.CITY] == 1 and levels[Level.COUNTY] == 13
    counties = {n.code: n.name for n in city.nodes if n.level is Level.COUNTY}
    assert counties == {c.code: c.name for c in COUNTIES}
    assert counties["141181"] == "孝义市" and counties["141102"] == "离石区"
    assert levels[Level.TOWNSHIP] == sum(c.township_count for c in COUNTIES) == 154
    assert levels[Level.VILLAGE] == sum(c.villages + c.communities for c in COUNTIES) == 2830
    assert len(city.groups) == 5267
    assert city.residents == 420_000
    assert len({g.chat_id for g in city.groups}) == 5267


def test_per_county_township_and_village_counts(city: City) -> None:
    parent = {n.code: n.parent for n in city.nodes}
    townships = Counter(n.parent for n in city.nodes if n.level is Level.TOWNSHIP)
    villages = Counter(parent[n.parent] for n in city.nodes if n.level is Level.VILLAGE)
    urban = Counter(parent[n.parent] for n in city.nodes if n.level is Level.VILLAGE and n.urban)
    for county in COUNTIES:
        assert townships[county.code] == county.township_count
        assert villages[county.code] == county.villages + county.communities
        assert urban[county.code] == county.communities


def test_codes_follow_the_node_scheme(city: City) -> None:
    for node in city.nodes:
        assert codes.level_of(node.code) is node.level, node
        if node.level not in (Level.CITY, Level.COUNTY):
            assert codes.expected_parent(node.code) == node.parent
    kinds = Counter(n.code[6:9][0] for n in city.nodes if n.level is Level.TOWNSHIP)
    assert set(kinds) <= {"0", "1", "2", "4"}  # 街道 0xx, 镇 1xx, 乡 2xx, other 4xx


def test_groups_are_one_per_village_and_urban_building(city: City) -> None:
    levels = {n.code: n for n in city.nodes}
    on = Counter(levels[g.node].level for g in city.groups)
    buildings = sum(1 for n in city.nodes if n.level is Level.BUILDING)
    assert on == {Level.VILLAGE: 2830, Level.BUILDING: buildings}
    assert all(
        levels[levels[levels[g.node].parent].parent].urban
        for g in city.groups
        if levels[g.node].level is Level.BUILDING
    )
    rule = NamingRule.parse(DEFAULT_RULE)
    assert all(rule.split(g.name) for g in city.groups)


def test_member_counts_respect_the_group_ceilings(city: City) -> None:
    assert max(g.member_count for g in city.groups if g.kind is CG) <= 500
    assert max(g.member_count for g in city.groups) <= 2000
    assert min(g.member_count for g in city.groups) >= 3


def test_kind_shares_are_an_argument() -> None:
    default = Counter(g.kind for g in generate_city(seed=3).groups)
    assert default == {CG: 5267 - 316 - 211, AC: round(5267 * 0.06), WH: round(5267 * 0.04)}
    other = Counter(
        g.kind for g in generate_city(seed=3, shares={CG: 0.5, AC: 0.3, WH: 0.2}).groups
    )
    assert other == {CG: 5267 - 1580 - 1053, AC: 1580, WH: 1053}
    webhooks = [g for g in generate_city(seed=3).groups if g.kind is WH]
    assert all(g.webhook_key for g in webhooks)


def test_same_seed_same_city_other_seed_other_city(city: City) -> None:
    again = generate_city(seed=11)
    assert (again.nodes, again.groups, again.people) == (city.nodes, city.groups, city.people)
    other = generate_city(seed=12)
    assert [g.chat_id for g in other.groups] != [g.chat_id for g in city.groups]
    assert len(other.groups) == 5267 and other.residents == 420_000


def test_staff_and_owners(city: City) -> None:
    roles = Counter(p.role for p in city.people)
    assert roles[Role.SUPERVISOR] == roles[Role.STATION_ADMIN] == 154
    workers = {p.userid: p for p in city.people if p.role is Role.GRID_WORKER}
    parents = {n.code: n.parent for n in city.nodes}
    for g in city.groups:  # the owner is a grid worker of the group's own grid (or village)
        grid = workers[g.owner].nodes[0]
        assert g.node == parents[grid] or g.node.startswith(grid)
    escalation = city.escalation()
    police = {p.userid for p in city.people if p.is_police or p.role is Role.STATION_ADMIN}
    assert set(escalation) == set(workers)
    assert all(officers and set(officers) <= police for officers in escalation.values())


def test_quota_and_deliberate_gaps_are_options() -> None:
    city = generate_city(seed=5, quota_partial=0.1, quota_full=7, staffing_gaps=9)
    full = [c for c, used in city.quota_used.items() if used >= 31]
    customer = sum(1 for g in city.groups if g.kind is CG)
    assert len(full) == 7 and len(city.quota_used) == 7 + round(customer * 0.1)
    assert len(city.gaps) == 9
    assert generate_city(seed=5, staffing_gaps=0).gaps == {}


def test_csv_round_trip(city: City, tmp_path: Path) -> None:
    paths = city.write_csv(tmp_path / "city.csv")
    assert [p.name for p in paths] == ["city_nodes.csv", "city_people.csv", "city.csv"]
    back = City.read_csv(tmp_path / "city.csv")
    assert (back.nodes, back.people, back.groups) == (city.nodes, city.people, city.groups)
    assert back.quota_used == city.quota_used


def test_loading_the_csv_files_into_the_simulator(city: City, tmp_path: Path) -> None:
    city.write_csv(tmp_path / "city.csv")
    sim = WeComSimulator(SimConfig())
    assert load_csv_into_simulator(tmp_path / "city.csv", sim) == 5267
    assert len(sim.state.groups.customer) == sum(1 for g in city.groups if g.kind is CG)
    assert sim.state.directory.escalation == {k: tuple(v) for k, v in city.escalation().items()}


def test_loading_into_the_simulator(city: City) -> None:
    sim = WeComSimulator(SimConfig())
    load_into_simulator(city, sim)
    customer = [g for g in city.groups if g.kind is CG]
    assert len(sim.state.groups.customer) == len(customer)
    first = sim.group(customer[0].chat_id)
    assert first is not None and (first.name, first.owner, first.member_count) == (
        customer[0].name,
        customer[0].owner,
        customer[0].member_count,
    )
    assert len(sim.state.groups.appchats) == sum(1 for g in city.groups if g.kind is AC)
    assert len(sim.state.groups.robots) == sum(1 for g in city.groups if g.kind is WH)
    assert sim.state.directory.escalation[customer[0].owner] == tuple(
        city.escalation()[customer[0].owner]
    )
    exhausted = [c for c, used in city.quota_used.items() if used >= 31]
    group = sim.group(exhausted[0])
    assert group is not None and not group.has_quota(sim.clock.now(), None)
