"""一标三实 records: standard addresses, people, housing and units, with review state and history.

Personal numbers and names never sit in `fields`: they are in `sealed` (ciphertext bound to the
record id and field, see collect/crypto.py) with a masked copy in `masked` for display.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import orjson

PACKED = 2  # layout number of Record.pack (1: the hash of Record.to_redis)
# positions in Record.pack's array that readers of raw rows (the export) use
(ID, NODE, STATE, FIELDS, SEALED, MASKED, CREATED_AT, CREATED_BY, UPDATED_AT, UPDATED_BY,
 SOURCE, NOTE) = (1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)


class RecordKind(StrEnum):
    ADDRESS = "address"  # 标准地址 (一标)
    PERSON = "person"  # 实有人口
    HOUSE = "house"  # 实有房屋
    UNIT = "unit"  # 实有单位

    @property
    def label(self) -> str:
        return {"address": "地址", "person": "人口", "house": "房屋", "unit": "单位"}[self.value]

    @property
    def prefix(self) -> str:
        """First letter of this kind's record ids (P12 is a person); users type these."""
        return {"address": "A", "person": "P", "house": "H", "unit": "U"}[self.value]

    @classmethod
    def from_label(cls, text: str) -> RecordKind | None:
        wanted = text.strip()
        aliases = {"人口": cls.PERSON, "实有人口": cls.PERSON, "人员": cls.PERSON,
                   "房屋": cls.HOUSE, "实有房屋": cls.HOUSE, "单位": cls.UNIT,
                   "实有单位": cls.UNIT, "地址": cls.ADDRESS, "标准地址": cls.ADDRESS}
        if wanted in aliases:
            return aliases[wanted]
        try:
            return cls(wanted.lower())
        except ValueError:
            return None

    @classmethod
    def of_id(cls, record_id: str) -> RecordKind | None:
        head = record_id[:1].upper()
        return next((k for k in cls if k.prefix == head), None)


class ReviewState(StrEnum):
    PENDING = "pending"  # 待核查
    VERIFIED = "verified"  # 已核查
    RETURNED = "returned"  # 退回

    @property
    def label(self) -> str:
        return {"pending": "待核查", "verified": "已核查", "returned": "退回"}[self.value]

    @classmethod
    def parse(cls, text: str) -> ReviewState | None:
        for state in cls:
            if text.strip() in (state.value, state.label):
                return state
        return None


class ChangeKind(StrEnum):
    """Why a record changed: the 'why' of every history entry (shown to users as is)."""

    COLLECT = "采集"
    MOVE_IN = "入住"
    MOVE_OUT = "搬离"
    RENT_OUT = "出租"
    CANCEL = "注销"
    CORRECT = "更正"
    DECLARE = "自主申报"
    UPDATE = "更新"
    VERIFY = "核查通过"
    RETURN = "退回"
    REKEY = "密钥轮换"


@dataclass(frozen=True, slots=True)
class Change:
    """One field's change, with display values only (masked where personal)."""

    field: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: float
    actor: str
    kind: ChangeKind
    reason: str = ""
    source: str = ""  # chat:<msgid> | form:<campaign> | cli
    changes: tuple[Change, ...] = ()

    def to_json(self) -> str:
        """A positional array: no field names repeated in every entry of every record."""
        return _compact([self.at, self.actor, self.kind.value, self.reason, self.source,
                         [[c.field, c.old, c.new] for c in self.changes]])

    @classmethod
    def from_json(cls, data: str) -> HistoryEntry:
        raw = json.loads(data)
        if isinstance(raw, dict):  # entries written before the positional form
            raw = [raw["at"], raw["actor"], raw["kind"], raw.get("reason", ""),
                   raw.get("source", ""), raw.get("changes", ())]
        at, actor, kind, reason, source, changes = raw
        return cls(at, actor, ChangeKind(kind), reason, source,
                   tuple(Change(*c) for c in changes))


@dataclass(frozen=True, slots=True)
class Record:
    id: str
    kind: RecordKind
    node: str  # deepest registry node the record hangs on (grid or building)
    state: ReviewState = ReviewState.PENDING
    fields: dict[str, str] = field(default_factory=dict)  # plain, non-personal values
    sealed: dict[str, str] = field(default_factory=dict)  # field -> ciphertext
    masked: dict[str, str] = field(default_factory=dict)  # field -> masked display value
    created_at: float = 0.0
    created_by: str = ""
    updated_at: float = 0.0
    updated_by: str = ""
    source: str = ""  # chat | form | cli: where the latest submission came from
    note: str = ""  # reason of the last 退回
    version: int = 0

    def display(self, name: str) -> str:
        """The value of `name` fit for any chat reply (masked if personal)."""
        return self.masked.get(name) or self.fields.get(name, "")

    def with_state(self, state: ReviewState, note: str = "") -> Record:
        return replace(self, state=state, note=note)

    def to_redis(self) -> dict[str, str]:
        return {
            "id": self.id, "kind": self.kind.value, "node": self.node, "state": self.state.value,
            "fields": _dump(self.fields), "sealed": _dump(self.sealed),
            "masked": _dump(self.masked), "created_at": f"{self.created_at:.3f}",
            "created_by": self.created_by, "updated_at": f"{self.updated_at:.3f}",
            "updated_by": self.updated_by, "source": self.source, "note": self.note,
            "version": str(self.version),
        }

    def pack(self) -> str:
        """The stored form: one string, a positional JSON array led by the layout number.

        One short value instead of a hash of 14 fields (a hash with a long value leaves the
        compact listpack encoding, paying a table entry and two allocations per field).
        """
        return _compact([PACKED, self.id, self.kind.value, self.node, self.state.value,
                         self.fields, self.sealed, self.masked, round(self.created_at, 3),
                         self.created_by, round(self.updated_at, 3), self.updated_by,
                         self.source, self.note, self.version])

    @classmethod
    def unpack(cls, data: str) -> Record:
        (layout, record_id, kind, node, state, fields, sealed, masked, created_at, created_by,
         updated_at, updated_by, source, note, version) = json.loads(data)
        if layout != PACKED:
            raise ValueError(f"unknown record layout {layout}")
        return cls(record_id, RecordKind(kind), node, ReviewState(state), fields, sealed,
                   masked, created_at, created_by, updated_at, updated_by, source, note,
                   version)

    @classmethod
    def from_redis(cls, raw: dict[str, str]) -> Record:
        """A record in the earlier layout (a hash of named fields): still read, and rewritten
        packed on its next save or by `gridbot collect upgrade-records`."""
        return cls(
            id=raw["id"], kind=RecordKind(raw["kind"]), node=raw["node"],
            state=ReviewState(raw["state"]), fields=json.loads(raw.get("fields") or "{}"),
            sealed=json.loads(raw.get("sealed") or "{}"),
            masked=json.loads(raw.get("masked") or "{}"),
            created_at=float(raw.get("created_at") or 0), created_by=raw.get("created_by", ""),
            updated_at=float(raw.get("updated_at") or 0), updated_by=raw.get("updated_by", ""),
            source=raw.get("source", ""), note=raw.get("note", ""),
            version=int(raw.get("version") or 0),
        )


_STRING = r'"(?:[^"\\]|\\.)*"'  # a JSON string, escapes included
_HEAD = re.compile(rf'\[{PACKED},{_STRING},{_STRING},{_STRING},"([a-z_]+)"')


def packed_state(packed: str) -> str:
    """The review state of a packed record, read off its head without decoding the rest (an
    export filters by state before its workers decode); anything unusual is decoded."""
    head = _HEAD.match(packed)
    if head is not None:
        return head.group(1)
    state: str = json.loads(packed)[STATE]
    return state


def decode_all(packed: list[str]) -> list[list[Any]]:
    """Each packed array decoded: one orjson.loads of the batch as an array of arrays (the
    per-call cost is a quarter of the decoding), each value alone if that does not give one
    array per value (a damaged value then fails as it would alone). orjson decodes JSON as
    json does (its errors are json's ValueError), at twice the speed."""
    rows: list[list[Any]] = []
    with contextlib.suppress(ValueError):
        rows = orjson.loads("[" + ",".join(packed) + "]")
    if len(rows) == len(packed) and all(type(row) is list for row in rows):
        return rows
    return [orjson.loads(value) for value in packed]


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _dump(mapping: dict[str, str]) -> str:
    return json.dumps(mapping, ensure_ascii=False, sort_keys=True)
