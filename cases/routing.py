"""Where a new case goes: the node's police (民警 and 辅警 covering the nearest node up the
path), its grid worker(s), and the supervisors escalations reach (township, then county)."""

from __future__ import annotations

from dataclasses import dataclass

from registry.models import Level, Node, Role
from registry.store import Registry

POLICE = (Role.OFFICER, Role.AUXILIARY)


@dataclass(frozen=True, slots=True)
class Route:
    path: tuple[str, ...]
    township: str
    county: str
    officers: tuple[str, ...]
    grid_workers: tuple[str, ...]


def _at(path: list[Node], level: Level) -> str:
    return next((n.code for n in path if n.level is level), "")


async def route(registry: Registry, node: str) -> Route | None:
    """None when `node` is not in the tree."""
    path = await registry.path(node)
    if not path:
        return None
    # the grid's 1+2+N: the nearest 民警 and the nearest 辅警 (they often sit at different levels)
    officers = [p for role in POLICE for p in await registry.staff_for(node, (role,))]
    grid = _at(path, Level.GRID)
    workers = await registry.staff_for(grid, (Role.GRID_WORKER,)) if grid else []
    return Route(tuple(n.code for n in path), _at(path, Level.TOWNSHIP), _at(path, Level.COUNTY),
                 tuple(p.userid for p in officers), tuple(p.userid for p in workers))


async def supervisors(registry: Registry, code: str) -> list[str]:
    """Supervisors covering `code` (nearest up the path)."""
    if not code:
        return []
    return [p.userid for p in await registry.staff_for(code, (Role.SUPERVISOR,))]
