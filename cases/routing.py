"""Where a new case goes: the node's police (民警 and 辅警 covering the nearest node up the
path), its grid worker(s), and the supervisors escalations reach (township, then county)."""

from __future__ import annotations

from dataclasses import dataclass

from registry.models import Level, Node, Person, Role
from registry.store import Registry

POLICE = (Role.OFFICER, Role.AUXILIARY)


@dataclass(frozen=True, slots=True)
class Route:
    path: tuple[str, ...]
    township: str
    county: str
    officers: tuple[str, ...]
    grid_workers: tuple[str, ...]
    names: dict[str, str]  # userid -> "name（role）" of the people above


def _at(path: list[Node], level: Level) -> str:
    return next((n.code for n in path if n.level is level), "")


def _nearest(codes: list[str], at: dict[str, list[Person]], role: Role,
             upto: str = "") -> list[Person]:
    """People of `role` on the nearest node going up from the end of `codes` (not above
    `upto` when given)."""
    for code in reversed(codes):
        found = [p for p in at[code] if p.role is role]
        if found:
            return found
        if code == upto:
            return []
    return []


async def route(registry: Registry, node: str) -> Route | None:
    """None when `node` is not in the tree. Two round trips: the path, then its staff."""
    path = await registry.path(node)
    if not path:
        return None
    codes = [n.code for n in path]
    at = await registry.staff_at(codes)
    # the grid's 1+2+N: the nearest 民警 and the nearest 辅警 (they often sit at different levels)
    officers = [p for role in POLICE for p in _nearest(codes, at, role)]
    grid = _at(path, Level.GRID)
    workers = _nearest(codes[:codes.index(grid) + 1], at, Role.GRID_WORKER, grid) if grid else []
    names = {p.userid: f"{p.name}（{p.role.label}）" for p in (*officers, *workers)}
    return Route(tuple(codes), _at(path, Level.TOWNSHIP), _at(path, Level.COUNTY),
                 tuple(p.userid for p in officers), tuple(p.userid for p in workers), names)


async def supervisors(registry: Registry, code: str) -> list[str]:
    """Supervisors covering `code` (nearest up the path)."""
    if not code:
        return []
    return [p.userid for p in await registry.staff_for(code, (Role.SUPERVISOR,))]
