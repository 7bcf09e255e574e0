"""Importing the registry from CSV / XLSX: nodes, people and groups (columns: README.md).

Each file is validated completely before anything is written: bad rows are reported with
their line and the reason, good rows are written, each row in one atomic script (pipelined).
Importing the same file twice changes nothing. The kind of file is told by its columns
(chat_id → groups, userid → people, code → nodes) unless given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TypeVar

from registry.models import LEVEL_ORDER, Group, Node, Person
from registry.placement import Placer
from registry.rows import (
    GROUP_COLUMNS,
    NODE_COLUMNS,
    PEOPLE_COLUMNS,
    REQUIRED,
    RowError,
    parse_group,
    parse_node,
    parse_person,
    split_list,
)
from registry.store import Registry
from registry.tabular import Table, TableError, read_table

T = TypeVar("T")
FileKind = Literal["groups", "nodes", "people"]
IMPORT_ACTOR = "import"
WRITE_BATCH = 500
COLUMNS: dict[FileKind, Mapping[str, Sequence[str]]] = {
    "groups": GROUP_COLUMNS, "nodes": NODE_COLUMNS, "people": PEOPLE_COLUMNS,
}
KIND_LABELS = {"groups": "群", "nodes": "节点", "people": "人员"}


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What one file did. `errors` are bad rows (not written); the rest were written."""

    path: str
    kind: FileKind
    encoding: str = ""
    rows: int = 0
    changed: int = 0
    unchanged: int = 0
    unplaced: int = 0
    errors: tuple[RowError, ...] = ()
    missing_columns: tuple[str, ...] = ()
    unknown_columns: tuple[str, ...] = ()
    failure: str = ""  # the file could not be read at all

    @property
    def imported(self) -> int:
        return self.changed + self.unchanged

    @property
    def ok(self) -> bool:
        return not (self.errors or self.missing_columns or self.failure)

    def report(self) -> str:
        """A Chinese summary with one line per bad row."""
        name = Path(self.path).name
        if self.failure:
            return f"{name}：{self.failure}"
        if self.missing_columns:
            return f"{name}：缺少必填列 {'、'.join(self.missing_columns)}，未导入任何行"
        head = (
            f"{name}（{KIND_LABELS[self.kind]}，{self.encoding}）：共 {self.rows} 行，"
            f"导入 {self.imported} 行（变更 {self.changed}，未变 {self.unchanged}），"
            f"错误 {len(self.errors)} 行"
        )
        lines = [head + (f"，未定位 {self.unplaced} 个群" if self.unplaced else "")]
        if self.unknown_columns:
            lines.append(f"  忽略未知列：{'、'.join(self.unknown_columns)}")
        lines.extend(f"  第 {e.line} 行：{e.reason}" for e in self.errors)
        return "\n".join(lines)


@dataclass
class _Batch:
    """Good rows of one file and the bad ones, before writing."""

    errors: list[RowError] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    explicit: set[str] = field(default_factory=set)  # chat ids placed by the file itself
    node_lines: list[tuple[int, Node]] = field(default_factory=list)


class Importer:
    """Validates and writes files into one registry."""

    def __init__(
        self, registry: Registry, placer: Placer, *, source: str = "",
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.registry = registry
        self.placer = placer
        self.source = source
        self.progress = progress  # called with the number of rows each batch wrote

    async def _batched(self, write: Callable[[list[T]], Awaitable[list[bool]]],
                       items: list[T]) -> int:
        """Write `items` in batches (one pipeline each); the number that changed."""
        changed = 0
        for start in range(0, len(items), WRITE_BATCH):
            chunk = items[start:start + WRITE_BATCH]
            changed += sum(await write(chunk))
            if self.progress:
                self.progress(len(chunk))
        return changed

    async def import_file(self, path: Path, kind: FileKind | None = None) -> ImportResult:
        try:
            kind = kind or detect_kind(path)
            table = read_table(path, COLUMNS[kind])
        except TableError as error:
            return ImportResult(str(path), kind or "groups", failure=str(error))
        return await self.import_table(table, kind, str(path))

    async def import_table(self, table: Table, kind: FileKind, path: str = "") -> ImportResult:
        base = ImportResult(path, kind, table.encoding, len(table.rows),
                            unknown_columns=table.unknown)
        missing = tuple(c for c in REQUIRED[kind] if c not in table.columns)
        if missing:
            return replace(base, missing_columns=missing)
        batch = await self._validate(table, kind)
        changed, unplaced = await self._write(batch, kind, source=self.source or Path(path).name)
        good = len(table.rows) - len(batch.errors)
        return replace(base, changed=changed, unchanged=good - changed, unplaced=unplaced,
                       errors=tuple(sorted(batch.errors, key=lambda e: e.line)))

    async def _validate(self, table: Table, kind: FileKind) -> _Batch:
        batch = _Batch()
        known = await self._known_nodes(table, kind)
        first: dict[str, tuple[int, dict[str, str]]] = {}
        conflicted: set[str] = set()
        for line, row in table.rows:
            key = row.get(_KEY[kind], "").strip()
            if key in first:
                batch.errors.append(_duplicate(line, key, first[key], row))
                if row != first[key][1]:
                    conflicted.add(key)
                continue
            first[key] = (line, row)
        for key, (line, row) in first.items():
            if key in conflicted:
                reason = f"{_KEY_LABEL[kind]}「{key}」在文件中重复且内容不一致，均未导入"
                batch.errors.append(RowError(line, reason, key))
                continue
            self._parse(kind, line, row, known, batch)
        if kind == "nodes":
            await self._drop_orphans(batch)
        return batch

    async def _drop_orphans(self, batch: _Batch) -> None:
        """A node whose parent row was bad cannot be written either: report it too."""
        good = {n.code for n in batch.nodes}
        parents = sorted({n.parent for n in batch.nodes if n.parent and n.parent not in good})
        stored = {c for c, n in zip(parents, await self.registry.nodes(parents), strict=True) if n}
        lines = {n.code: line for line, n in batch.node_lines}
        while True:
            orphans = [n for n in batch.nodes if n.parent and n.parent not in good | stored]
            if not orphans:
                return
            for node in orphans:
                good.discard(node.code)
                batch.nodes.remove(node)
                reason = f"上级节点「{node.parent}」所在行有错误，本行也未导入"
                batch.errors.append(RowError(lines[node.code], reason, node.code))

    def _parse(
        self, kind: FileKind, line: int, row: dict[str, str], known: Callable[[str], bool],
        batch: _Batch,
    ) -> None:
        if kind == "nodes":
            node = parse_node(line, row, known)
            _keep(node, batch.nodes, batch.errors)
            if isinstance(node, Node):
                batch.node_lines.append((line, node))
        elif kind == "people":
            _keep(parse_person(line, row, known), batch.people, batch.errors)
        else:
            group = parse_group(line, row, known)
            _keep(group, batch.groups, batch.errors)
            if isinstance(group, Group) and group.node:
                batch.explicit.add(group.chat_id)

    async def _known_nodes(self, table: Table, kind: FileKind) -> Callable[[str], bool]:
        """Whether a code exists: in the registry, or (for a nodes file) earlier in the file."""
        wanted = {row.get(c, "") for _, row in table.rows for c in ("node", "parent", "nodes")}
        codes_needed = sorted({c for v in wanted for c in split_list(v)})
        found = await self.registry.nodes(codes_needed)
        existing = {code for code, n in zip(codes_needed, found, strict=True) if n is not None}
        if kind == "nodes":
            existing |= {row.get("code", "") for _, row in table.rows}
        return existing.__contains__

    async def _write(self, batch: _Batch, kind: FileKind, *, source: str) -> tuple[int, int]:
        if kind == "nodes":
            ordered = sorted(batch.nodes, key=lambda n: (LEVEL_ORDER.index(n.level), n.code))
            return await self._batched(self.registry.upsert_nodes, ordered), 0
        if kind == "people":
            return await self._batched(self.registry.upsert_people, batch.people), 0
        return await self._write_groups(batch, source)

    async def _write_groups(self, batch: _Batch, source: str) -> tuple[int, int]:
        stored = await self.registry.groups([g.chat_id for g in batch.groups])
        existing = {g.chat_id: g for g in stored}
        groups: list[Group] = []
        reasons: dict[str, tuple[str, tuple[str, ...]]] = {}
        for group in batch.groups:
            old = existing.get(group.chat_id)
            if old is not None:  # a dismissed group stays dismissed
                group = group._replace(state=old.state, dismissed_at=old.dismissed_at)
            if not group.node:
                placement = await self.placer.place(group.name)
                group = group._replace(node=placement.node or (old.node if old else ""))
                reasons[group.chat_id] = (placement.reason, placement.candidates)
            groups.append(group)

        async def write(chunk: list[Group]) -> list[bool]:
            return await self.registry.upsert_groups(
                chunk, actor=IMPORT_ACTOR, source=source, reasons=reasons
            )

        changed = await self._batched(write, groups)
        explicit = {g.chat_id: g.name for g in groups if g.chat_id in batch.explicit}
        await self.registry.set_bindings(explicit)
        unplaced = sum(1 for g in groups if not g.node)
        return changed, unplaced


_DETECT_ORDER: tuple[FileKind, ...] = ("groups", "people", "nodes")
_KEY: dict[FileKind, str] = {"groups": "chat_id", "nodes": "code", "people": "userid"}
_KEY_LABEL: dict[FileKind, str] = {"groups": "群ID", "nodes": "节点编码", "people": "userid"}


def detect_kind(path: Path) -> FileKind:
    """groups / people / nodes by the header's key column (groups when nothing tells)."""
    keys = {_KEY[kind]: COLUMNS[kind][_KEY[kind]] for kind in _DETECT_ORDER}
    found = set(read_table(path, keys).columns)
    return next((kind for kind in _DETECT_ORDER if _KEY[kind] in found), "groups")


def _duplicate(
    line: int, key: str, first: tuple[int, dict[str, str]], row: dict[str, str]
) -> RowError:
    same = "（内容相同）" if row == first[1] else ""
    return RowError(line, f"「{key}」与第 {first[0]} 行重复{same}", key)


def _keep(parsed: T | RowError, good: list[T], bad: list[RowError]) -> None:
    if isinstance(parsed, RowError):
        bad.append(parsed)
    else:
        good.append(parsed)


__all__ = ["COLUMNS", "ImportResult", "Importer", "RowError", "detect_kind"]
