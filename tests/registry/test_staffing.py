"""Staffing check: 1+2+N in communities, 1+N in villages; it finds the deliberate gaps."""

from __future__ import annotations

from pathlib import Path

from registry.city import City
from registry.models import Person, Role
from registry.staffing import missing_for, staffing_gaps
from registry.store import Registry
from registry.synthetic import generate_city
from tests.registry.conftest import import_city


def officer(n: int, role: Role = Role.OFFICER) -> Person:
    return Person(f"p{n}", "某人", role, ("x",))


def test_rules() -> None:
    worker = [officer(9, Role.GRID_WORKER)]
    full = [officer(1), officer(2, Role.AUXILIARY), officer(3, Role.AUXILIARY)]
    assert missing_for(True, full, worker) == []
    assert missing_for(True, full[:2], worker) == [("辅警", 1)]
    assert missing_for(True, [], []) == [("民警", 1), ("辅警", 2), ("网格员", 1)]
    assert missing_for(False, [officer(2, Role.AUXILIARY)], worker) == []
    assert missing_for(False, [], worker) == [("民警或辅警", 1)]
    assert missing_for(False, full[:1], []) == [("网格员", 1)]


async def test_staffing_check_finds_exactly_the_deliberate_gaps(
    small_registry: Registry, small_city: City
) -> None:
    gaps = await staffing_gaps(small_registry)
    assert len(small_city.gaps) == 5
    assert {g.grid: g.missing for g in gaps} == small_city.gaps
    first = gaps[0]
    assert first.path.startswith("吕梁市/离石区/") and first.rule in ("1+2+N", "1+N")
    assert "缺" in first.describe()
    county_only = await staffing_gaps(small_registry, "141102")
    assert county_only == gaps
    township = gaps[0].grid[:9]
    assert {g.grid for g in await staffing_gaps(small_registry, township)} == {
        g.grid for g in gaps if g.grid.startswith(township)
    }


async def test_a_fully_staffed_city_has_no_gaps(registry: Registry, tmp_path: Path) -> None:
    city = generate_city(
        seed=7, counties=("141126",), total_groups=110, residents=9000, staffing_gaps=0
    )
    await import_city(registry, city, tmp_path)
    assert await staffing_gaps(registry) == []
