"""A synthetic 吕梁市 — or any city whose official division tree is given (`tree`,
divisions.load_tree) — deterministic by seed, for tests, the demo and the benchmarks.

The 13 real county-level divisions with their real township and village counts
(divisions.py, yibiao_sanshi.md §3); made-up names. Codes follow the node scheme: township
= county + 3 digits (街道 0xx, 镇 1xx, 乡 2xx, other 4xx), village = township + 3 digits
(社区 0xx, 村 2xx), grids `-Gnn`, buildings `-Bnnn`. Every 村社区 has a group, and every
building of an urban community has one; the building count is tuned so the city has exactly
`total_groups` (5,267) groups. Member counts sum to exactly `residents` (420,000). Staff
follow "1+2+N" (community: an officer for the community, two auxiliaries and 1–2 grid
workers per grid) and "1+N" (villages: an officer or auxiliary for up to three villages, a
grid worker per grid), with a supervisor and a station admin per township — except
`staffing_gaps` deliberate gaps, recorded in City.gaps.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from registry import codes
from registry.city import City, Simulator, load_into_simulator
from registry.divisions import CITY_CODE, CITY_NAME, COUNTIES, OTHER_UNITS, County
from registry.models import ROLE_LABELS, DeliveryKind, Group, Level, Node, Person, Role
from registry.names import NamePool, chinese_ordinal
from registry.placement import NamingRule
from registry.rows import MAX_MEMBERS
from registry.staffing import POLICE_OR_AUX

DEFAULT_SHARES: Mapping[DeliveryKind, float] = {
    DeliveryKind.CUSTOMER_GROUP: 0.90, DeliveryKind.APPCHAT: 0.06, DeliveryKind.WEBHOOK: 0.04,
}
DEFAULT_RULE = "{county}-{township}-{village}-{building}"
MIN_MEMBERS = 3
FULL_QUOTA = 31  # at least the days of any month: no group-send left
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

__all__ = [
    "DEFAULT_SHARES", "City", "CityOptions", "Simulator", "generate_city",
    "load_csv_into_simulator", "load_into_simulator",
]


@dataclass(frozen=True, slots=True)
class CityOptions:
    seed: int = 2024
    total_groups: int = 5267
    residents: int = 420_000
    shares: Mapping[DeliveryKind, float] = field(default_factory=lambda: dict(DEFAULT_SHARES))
    staffing_gaps: int = 5
    quota_partial: float = 0.2  # share of customer groups that used part of this month's quota
    quota_full: int = 5  # customer groups that used all of it
    counties: tuple[str, ...] = ()  # a subset of county codes (small cities for tests)
    naming_rule: str = DEFAULT_RULE
    tree: tuple[Node, ...] = ()  # a real division tree (divisions.load_tree) instead of 吕梁


def generate_city(
    seed: int = 2024, shares: Mapping[DeliveryKind, float] | None = None, **options: object
) -> City:
    """The synthetic city for `seed`; `options` are CityOptions fields."""
    opts = CityOptions(seed=seed, **options)  # type: ignore[arg-type]
    if shares is not None:
        opts = replace(opts, shares=dict(shares))
    return _Builder(opts).build()


def load_csv_into_simulator(path: Path, sim: Simulator) -> int:
    """`gridbot sim --loader registry.synthetic:load_csv_into_simulator`: the city whose
    files City.write_csv wrote (`path` is the groups file); returns the number of groups."""
    city = City.read_csv(path)
    load_into_simulator(city, sim)
    return len(city.groups)


@dataclass
class _Grid:
    node: Node
    workers: list[str] = field(default_factory=list)


class _Builder:
    """Builds one city; every random draw goes through one seeded Random, in a fixed order."""

    def __init__(self, opts: CityOptions) -> None:
        self.opts = opts
        self.rng = random.Random(opts.seed)
        self.names = NamePool(self.rng)
        self.rule = NamingRule.parse(opts.naming_rule)
        self.nodes: list[Node] = []
        self.people: list[Person] = []
        self.grids: dict[str, list[_Grid]] = {}  # village code -> its grids
        self.gaps: dict[str, tuple[tuple[str, int], ...]] = {}
        self._serial: dict[str, int] = {}

    def build(self) -> City:
        villages = self._from_tree() if self.opts.tree else self._lvliang()
        self._buildings(villages)
        for township in (n for n in self.nodes if n.level is Level.TOWNSHIP):
            self._township_staff(township)
        self._village_staff(villages)
        self._make_gaps(villages)
        groups = self._groups(villages)
        return City(self.nodes, groups, self.people, self._quota(groups), dict(self.gaps))

    # --- the tree -------------------------------------------------------------------------

    def _lvliang(self) -> list[Node]:
        counties = [c for c in COUNTIES if not self.opts.counties or c.code in self.opts.counties]
        if not counties:
            raise ValueError(f"没有可用的县区：{','.join(self.opts.counties)}")
        self.nodes.append(Node(CITY_CODE, CITY_NAME, Level.CITY))
        return [v for county in counties for v in self._county(county)]

    def _from_tree(self) -> list[Node]:
        """The city's own 村/社区 from official codes; grids and buildings are made up."""
        self.nodes.extend(self.opts.tree)
        return [n for n in self.opts.tree if n.level is Level.VILLAGE]

    def _county(self, county: County) -> list[Node]:
        self.nodes.append(Node(county.code, county.name, Level.COUNTY, CITY_CODE))
        townships = self._townships(county)
        self.nodes.extend(townships)
        hosts = [t for t in townships if t.name.endswith("街道")] or [
            t for t in townships if t.name.endswith("镇")] or townships
        rural = [t for t in townships if not t.name.endswith("街道")] or townships
        per_host = split(county.communities, len(hosts), self.rng)
        per_rural = split(county.villages, len(rural), self.rng)
        villages = []
        for township in townships:
            urban = per_host[hosts.index(township)] if township in hosts else 0
            plain = per_rural[rural.index(township)] if township in rural else 0
            villages.extend(self._villages(county, township, urban, plain))
        return villages

    def _townships(self, county: County) -> list[Node]:
        kinds = [("街道", 0, county.subdistricts), ("镇", 100, county.towns),
                 ("乡", 200, county.townships)]
        out = []
        for suffix, base, count in kinds:
            for i in range(1, count + 1):
                name = self.names.stem(county.code) + suffix
                out.append(Node(f"{county.code}{base + i:03d}", name, Level.TOWNSHIP, county.code))
        if county.other:
            name = OTHER_UNITS.get(county.code) or self.names.stem(county.code) + "开发区"
            out.append(Node(f"{county.code}400", name, Level.TOWNSHIP, county.code))
        return out

    def _villages(self, county: County, township: Node, urban: int, plain: int) -> list[Node]:
        if urban + plain == 0:
            plain = 1  # every township has at least one 村社区
        out = []
        for i in range(1, urban + 1):
            name = self.names.stem(county.code) + "社区"
            out.append(Node(f"{township.code}{i:03d}", name, Level.VILLAGE, township.code, True))
        for i in range(1, plain + 1):
            name = self.names.stem(county.code) + "村"
            out.append(Node(f"{township.code}{200 + i:03d}", name, Level.VILLAGE, township.code))
        self.nodes.extend(out)
        return out

    def _buildings(self, villages: list[Node]) -> None:
        urban = [v for v in villages if v.urban]
        buildings = self.opts.total_groups - len(villages)
        if buildings < len(urban):
            least = len(villages) + len(urban)
            raise ValueError(f"群总数 {self.opts.total_groups} 太少：至少需要 {least}")
        per_community = split(buildings, len(urban), self.rng) if urban else []
        counts = dict(zip((v.code for v in urban), per_community, strict=True))
        for village in villages:
            if village.urban:
                self._urban_grids(village, counts[village.code])
            else:
                self._rural_grids(village)

    def _urban_grids(self, village: Node, buildings: int) -> None:
        count = max(1, min(buildings, max(2, min(8, math.ceil(buildings / 4)))))
        grids = self._grid_nodes(village, count)
        number = 0
        for grid, share in zip(grids, split(buildings, count, self.rng), strict=True):
            for _ in range(share):
                number += 1
                code = codes.building_code(grid.node.code, number)
                self.nodes.append(Node(code, f"{number}号楼", Level.BUILDING, grid.node.code))

    def _rural_grids(self, village: Node) -> None:
        self._grid_nodes(village, 2 if self.rng.random() < 0.25 else 1)

    def _grid_nodes(self, village: Node, count: int) -> list[_Grid]:
        grids = []
        for i in range(1, count + 1):
            name = f"{village.name}第{chinese_ordinal(i)}网格"
            code = codes.grid_code(village.code, i)
            node = Node(code, name, Level.GRID, village.code, village.urban)
            self.nodes.append(node)
            grids.append(_Grid(node))
        self.grids[village.code] = grids
        return grids

    # --- staff ----------------------------------------------------------------------------

    def _person(self, prefix: str, role: Role, nodes: Sequence[str]) -> str:
        self._serial[prefix] = self._serial.get(prefix, 0) + 1
        userid = f"{prefix}{self._serial[prefix]:05d}"
        self.people.append(Person(userid, self.names.person(), role, tuple(nodes)))
        return userid

    def _township_staff(self, township: Node) -> None:
        self._person("fz", Role.SUPERVISOR, [township.code])
        self._person("pcs", Role.STATION_ADMIN, [township.code])

    def _village_staff(self, villages: list[Node]) -> None:
        rural: dict[str, list[Node]] = {}
        for village in villages:
            if village.urban:
                self._person("mj", Role.OFFICER, [village.code])
            else:
                rural.setdefault(village.parent, []).append(village)
            for grid in self.grids[village.code]:
                if village.urban:
                    self._person("fj", Role.AUXILIARY, [grid.node.code])
                    self._person("fj", Role.AUXILIARY, [grid.node.code])
                workers = 2 if self.rng.random() < (0.3 if village.urban else 0.1) else 1
                grid.workers = [self._person("wg", Role.GRID_WORKER, [grid.node.code])
                                for _ in range(workers)]
        for members in rural.values():
            for start in range(0, len(members), 3):
                chunk = [v.code for v in members[start:start + 3]]
                officer = self.rng.random() < 0.4
                prefix, role = ("mj", Role.OFFICER) if officer else ("fj", Role.AUXILIARY)
                self._person(prefix, role, chunk)

    def _make_gaps(self, villages: list[Node]) -> None:
        makers = (self._gap_auxiliary, self._gap_worker, self._gap_police)
        candidates = list(villages)
        self.rng.shuffle(candidates)
        for i in range(self.opts.staffing_gaps):
            for village in list(candidates):
                if makers[i % len(makers)](village):
                    candidates.remove(village)
                    break

    def _drop(self, userid: str) -> None:
        self.people = [p for p in self.people if p.userid != userid]

    def _gap_auxiliary(self, village: Node) -> bool:
        """An urban grid with one auxiliary instead of two."""
        if not village.urban:
            return False
        grid = self.grids[village.code][0].node.code
        aux = [p for p in self.people if p.role is Role.AUXILIARY and p.nodes == (grid,)]
        self._drop(aux[-1].userid)
        self.gaps[grid] = ((ROLE_LABELS[Role.AUXILIARY], 1),)
        return True

    def _gap_worker(self, village: Node) -> bool:
        """A village's second grid without a grid worker (it owns no group)."""
        grids = self.grids[village.code]
        if village.urban or len(grids) < 2:
            return False
        for userid in grids[1].workers:
            self._drop(userid)
        grids[1].workers = []
        self.gaps[grids[1].node.code] = ((ROLE_LABELS[Role.GRID_WORKER], 1),)
        return True

    def _gap_police(self, village: Node) -> bool:
        """A one-grid village left out of its police's villages."""
        grids = self.grids[village.code]
        police = [p for p in self.people if p.is_police and village.code in p.nodes]
        if village.urban or len(grids) != 1 or len(police) != 1 or len(police[0].nodes) < 2:
            return False
        kept = tuple(c for c in police[0].nodes if c != village.code)
        self.people = [replace(p, nodes=kept) if p is police[0] else p for p in self.people]
        self.gaps[grids[0].node.code] = ((POLICE_OR_AUX, 1),)
        return True

    # --- groups ---------------------------------------------------------------------------

    def _groups(self, villages: list[Node]) -> list[Group]:
        names = {n.code: n for n in self.nodes}
        slots: list[tuple[Node, str, str]] = []  # (node, owner, tag)
        buildings: dict[str, list[Node]] = {}
        for node in self.nodes:
            if node.level is Level.BUILDING:
                buildings.setdefault(node.parent, []).append(node)
        for village in villages:
            grids = self.grids[village.code]
            slots.append((village, grids[0].workers[0], "社区" if village.urban else "村"))
            for grid in grids:
                owner = grid.workers[0] if grid.workers else ""
                slots.extend((b, owner, "楼栋") for b in buildings.get(grid.node.code, ()))
        kinds = self._kinds(len(slots))
        members = self._members(slots, kinds)
        return [
            self._group(node, owner, tag, kind, count, names)
            for (node, owner, tag), kind, count in zip(slots, kinds, members, strict=True)
        ]

    def _kinds(self, total: int) -> list[DeliveryKind]:
        shares = self.opts.shares
        wanted = {k: round(total * shares.get(k, 0.0)) for k in DeliveryKind
                  if k is not DeliveryKind.CUSTOMER_GROUP}
        kinds = [DeliveryKind.CUSTOMER_GROUP] * total
        order = list(range(total))
        self.rng.shuffle(order)
        for kind, count in wanted.items():
            for index in order[:count]:
                kinds[index] = kind
            order = order[count:]
        return kinds

    def _members(self, slots: list[tuple[Node, str, str]], kinds: list[DeliveryKind]) -> list[int]:
        means = {"村": 160.0, "社区": 260.0, "楼栋": 55.0}
        raw = [self.rng.lognormvariate(math.log(means[tag]), 0.45) for _, _, tag in slots]
        caps = [MAX_MEMBERS[k] for k in kinds]
        return fit_total(raw, caps, self.opts.residents, self.rng)

    def _group(
        self, node: Node, owner: str, tag: str, kind: DeliveryKind, count: int,
        nodes: dict[str, Node],
    ) -> Group:
        chain: dict[Level, str] = {}
        code = node.code
        while code:
            chain[nodes[code].level] = nodes[code].name
            code = nodes[code].parent
        name = self.rule.format(chain)
        if kind is DeliveryKind.CUSTOMER_GROUP:
            chat_id = "wr" + "".join(self.rng.choice(ALNUM) for _ in range(20))
        else:
            prefix = "ac" if kind is DeliveryKind.APPCHAT else "wb"
            chat_id = f"{prefix}{self.rng.getrandbits(64):016x}"
        key = _uuid(self.rng) if kind is DeliveryKind.WEBHOOK else ""
        return Group(chat_id, name, kind, node.code, owner, count, webhook_key=key, tags=(tag,))

    def _quota(self, groups: list[Group]) -> dict[str, int]:
        customer = [g.chat_id for g in groups if g.kind is DeliveryKind.CUSTOMER_GROUP]
        chosen = self.rng.sample(customer, min(len(customer), self.opts.quota_full
                                               + round(len(customer) * self.opts.quota_partial)))
        full, partial = chosen[: self.opts.quota_full], chosen[self.opts.quota_full:]
        return {**{c: self.rng.randint(1, 27) for c in partial}, **dict.fromkeys(full, FULL_QUOTA)}


def split(total: int, parts: int, rng: random.Random) -> list[int]:
    """`total` split into `parts` random shares (each ≥ 1 when total ≥ parts), summing exactly."""
    if parts <= 0:
        return []
    floor = 1 if total >= parts else 0
    rest = total - floor * parts
    weights = [rng.uniform(0.5, 1.5) for _ in range(parts)]
    exact = [rest * w / sum(weights) for w in weights]
    shares = [math.floor(x) for x in exact]
    by_remainder = sorted(range(parts), key=lambda i: exact[i] - shares[i], reverse=True)
    for i in by_remainder[: rest - sum(shares)]:
        shares[i] += 1
    return [floor + s for s in shares]


def fit_total(raw: list[float], caps: list[int], total: int, rng: random.Random) -> list[int]:
    """Integers proportional to `raw`, within [MIN_MEMBERS, cap], summing exactly to `total`."""
    if not MIN_MEMBERS * len(raw) <= total <= sum(caps):
        raise ValueError(f"居民数 {total} 无法分配到 {len(raw)} 个群（每群人数有上下限）")
    scale = total / sum(raw)
    counts = [
        min(cap, max(MIN_MEMBERS, round(r * scale))) for r, cap in zip(raw, caps, strict=True)
    ]
    order = list(range(len(raw)))
    rng.shuffle(order)
    diff = total - sum(counts)
    while diff:
        step = 1 if diff > 0 else -1
        for i in order:
            room = caps[i] - counts[i] if step > 0 else counts[i] - MIN_MEMBERS
            move = min(room, abs(diff), abs(diff) // len(raw) + 1)
            if move > 0:
                counts[i] += move * step
                diff -= move * step
            if not diff:
                break
    return counts


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
