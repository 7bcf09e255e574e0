"""Staffing check: which grids lack their officer or grid worker.

"1+2+N" in urban grids (社区): one officer, two auxiliaries, at least one grid worker.
"1+N" in village grids (村): one officer or auxiliary, at least one grid worker.
Police count for a grid when they cover the grid itself or its 村社区 (a community officer
serves all its grids); grid workers must cover the grid itself. Coverage higher up (a
township supervisor, a station admin) does not staff a grid.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from registry.models import ROLE_LABELS, Level, Person, Role
from registry.store import Registry

URBAN_RULE = "1+2+N"
RURAL_RULE = "1+N"
POLICE_OR_AUX = "民警或辅警"


@dataclass(frozen=True, slots=True)
class StaffingGap:
    grid: str
    path: str  # names, root first, joined by "/"
    rule: str
    missing: tuple[tuple[str, int], ...]  # (Chinese role label, how many), in rule order

    def describe(self) -> str:
        lacking = "、".join(f"{label} {n} 名" for label, n in self.missing)
        return f"{self.path}（{self.rule}）缺 {lacking}"


def missing_for(urban: bool, police: list[Person], workers: list[Person]) -> list[tuple[str, int]]:
    """What a grid staffed by `police` and `workers` lacks under its rule."""
    roles = Counter(p.role for p in police)
    if urban:
        need = [
            (ROLE_LABELS[Role.OFFICER], 1 - roles[Role.OFFICER]),
            (ROLE_LABELS[Role.AUXILIARY], 2 - roles[Role.AUXILIARY]),
        ]
    else:
        need = [(POLICE_OR_AUX, 1 - roles[Role.OFFICER] - roles[Role.AUXILIARY])]
    need.append((ROLE_LABELS[Role.GRID_WORKER], 1 - len(workers)))
    return [(label, n) for label, n in need if n > 0]


async def staffing_gaps(registry: Registry, under: str = "") -> list[StaffingGap]:
    """Every grid at or below `under` (the whole registry when "") that misses someone."""
    grids = await registry.nodes_at_level(Level.GRID, under)
    villages = {n.code: n for n in await registry.nodes(sorted({g.parent for g in grids})) if n}
    staff = await registry.staff_at([*(g.code for g in grids), *villages])
    paths = await registry.paths([g.code for g in grids])
    gaps = []
    for grid in grids:
        village = villages.get(grid.parent)
        urban = grid.urban or bool(village and village.urban)
        police = _unique(p for code in (grid.code, grid.parent) for p in staff.get(code, ())
                         if p.is_police)
        workers = [p for p in staff[grid.code] if p.role is Role.GRID_WORKER]
        missing = missing_for(urban, police, workers)
        if missing:
            path = "/".join(n.name for n in paths[grid.code])
            gaps.append(StaffingGap(grid.code, path, URBAN_RULE if urban else RURAL_RULE,
                                    tuple(missing)))
    return gaps


def _unique(people: Iterable[Person]) -> list[Person]:
    seen: dict[str, Person] = {}
    for person in people:
        seen.setdefault(person.userid, person)
    return list(seen.values())
