"""A whole city's registry content in memory (made by synthetic.py, or read back from CSV).

`write_csv(path)` writes the three import files (nodes, people, groups; columns in
README.md) and `read_csv(path)` reads them back; `escalation()` is whom each grid worker's
reminders escalate to, as the simulator wants it.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from registry.models import DeliveryKind, Group, Level, Node, Person, Role

GROUP_HEADER = ("chat_id", "name", "kind", "node", "owner", "member_count", "webhook_key", "tags",
                "quota_used")
NODE_HEADER = ("code", "name", "level", "parent", "urban")
PEOPLE_HEADER = ("userid", "name", "role", "nodes")


@dataclass
class City:
    nodes: list[Node]
    groups: list[Group]
    people: list[Person]
    quota_used: dict[str, int] = field(default_factory=dict)  # chat_id -> sends this month
    gaps: dict[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)  # grid -> missing

    @property
    def residents(self) -> int:
        return sum(g.member_count for g in self.groups)

    def users(self) -> dict[str, str]:
        """userid -> name of every person (the app's visible members)."""
        return {p.userid: p.name for p in self.people}

    def escalation(self) -> dict[str, list[str]]:
        """Grid worker -> the officers of their grid (auxiliaries if it has no officer,
        the township's station admin if it has no police at all)."""
        parents = {n.code: n.parent for n in self.nodes}
        at: defaultdict[str, list[Person]] = defaultdict(list)
        for person in self.people:
            for code in person.nodes:
                at[code].append(person)
        out = {}
        for worker in (p for p in self.people if p.role is Role.GRID_WORKER and p.nodes):
            grid = worker.nodes[0]
            out[worker.userid] = _escalate_to(grid, parents, at)
        return out

    def write_csv(self, path: Path | str) -> tuple[Path, Path, Path]:
        """Write the import files (UTF-8 with BOM, so Excel opens them); import in this order."""
        nodes_path, people_path, groups_path = city_files(Path(path))
        _write(nodes_path, NODE_HEADER, (_node_row(n) for n in self.nodes))
        _write(people_path, PEOPLE_HEADER, (_person_row(p) for p in self.people))
        _write(groups_path, GROUP_HEADER, (self._group_row(g) for g in self.groups))
        return nodes_path, people_path, groups_path

    def write_nodes_csv(self, path: Path) -> Path:
        """Only the nodes file (`gridbot groups divisions --out`)."""
        _write(path, NODE_HEADER, (_node_row(n) for n in self.nodes))
        return path

    def _group_row(self, g: Group) -> Sequence[object]:
        return (g.chat_id, g.name, g.kind.value, g.node, g.owner, g.member_count, g.webhook_key,
                ";".join(g.tags), self.quota_used.get(g.chat_id, 0))

    def load_into_simulator(self, sim: Simulator) -> None:
        load_into_simulator(self, sim)

    @classmethod
    def read_csv(cls, path: Path | str) -> City:
        """The city written by write_csv (the importer is the validating reader)."""
        nodes_path, people_path, groups_path = city_files(Path(path))
        nodes = [_node(r) for r in _read(nodes_path)] if nodes_path.is_file() else []
        people = [_person(r) for r in _read(people_path)] if people_path.is_file() else []
        rows = _read(groups_path)
        quota = {r["chat_id"]: int(r.get("quota_used") or 0) for r in rows}
        return cls(nodes, people=people, groups=[_group(r) for r in rows],
                   quota_used={k: v for k, v in quota.items() if v})


class Simulator(Protocol):
    """The parts of bot.wecom.simulator.WeComSimulator the city is loaded through."""

    def load_directory(
        self, users: Mapping[str, str], escalation: Mapping[str, Sequence[str]] | None = None
    ) -> None: ...

    def add_customer_group(
        self, chat_id: str, name: str, owner: str, member_count: int, quota_used: int = 0
    ) -> None: ...

    def add_appchat(self, chat_id: str, name: str, members: Sequence[str]) -> None: ...

    def add_robot(self, key: str, chat_id: str) -> None: ...


def load_into_simulator(city: City, sim: Simulator) -> None:
    """Give the simulator the city's directory, escalation and every group."""
    sim.load_directory(city.users(), city.escalation())
    for g in city.groups:
        if g.kind is DeliveryKind.CUSTOMER_GROUP:
            sim.add_customer_group(g.chat_id, g.name, g.owner, g.member_count,
                                   city.quota_used.get(g.chat_id, 0))
        elif g.kind is DeliveryKind.APPCHAT:
            members = [g.owner, *(f"{g.chat_id}.{i}" for i in range(1, g.member_count))]
            sim.add_appchat(g.chat_id, g.name, members)
        else:
            sim.add_robot(g.webhook_key, g.chat_id)


def city_files(path: Path) -> tuple[Path, Path, Path]:
    """(nodes, people, groups) files of the city whose groups file is `path`."""
    return (path.with_name(f"{path.stem}_nodes{path.suffix}"),
            path.with_name(f"{path.stem}_people{path.suffix}"), path)


def _escalate_to(
    grid: str, parents: dict[str, str], at: dict[str, list[Person]]
) -> list[str]:
    police = [p for code in (grid, parents.get(grid, "")) for p in at.get(code, ()) if p.is_police]
    officers = [p.userid for p in police if p.role is Role.OFFICER]
    if officers or police:
        return officers or [p.userid for p in police]
    code = grid
    while code:
        admins = [p.userid for p in at.get(code, ()) if p.role is Role.STATION_ADMIN]
        if admins:
            return admins
        code = parents.get(code, "")
    return []


def _write(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def _node_row(n: Node) -> Sequence[object]:
    return (n.code, n.name, n.level.value, n.parent, "是" if n.urban else "否")


def _person_row(p: Person) -> Sequence[object]:
    return (p.userid, p.name, p.role.value, ";".join(p.nodes))


def _node(r: dict[str, str]) -> Node:
    return Node(r["code"], r["name"], Level(r["level"]), r["parent"], r["urban"] == "是")


def _person(r: dict[str, str]) -> Person:
    return Person(r["userid"], r["name"], Role(r["role"]), tuple(r["nodes"].split(";")))


def _group(r: dict[str, str]) -> Group:
    tags = tuple(t for t in r.get("tags", "").split(";") if t)
    return Group(r["chat_id"], r["name"], DeliveryKind(r["kind"]), r["node"], r["owner"],
                 int(r["member_count"] or 0), webhook_key=r.get("webhook_key", ""), tags=tags)
