"""The grid registry's records: the administrative tree, resident groups and people."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple


class Level(StrEnum):
    """Levels of the administrative tree, top to bottom."""

    CITY = "city"  # 市
    COUNTY = "county"  # 县区
    TOWNSHIP = "township"  # 乡镇街道
    VILLAGE = "village"  # 村社区
    GRID = "grid"  # 网格
    BUILDING = "building"  # 楼栋

    @property
    def label(self) -> str:
        return LEVEL_LABELS[self]


LEVEL_LABELS = {
    Level.CITY: "市",
    Level.COUNTY: "县区",
    Level.TOWNSHIP: "乡镇街道",
    Level.VILLAGE: "村社区",
    Level.GRID: "网格",
    Level.BUILDING: "楼栋",
}
LEVEL_ORDER = list(Level)


class DeliveryKind(StrEnum):
    """How a notice reaches a group (wecom.md §1)."""

    CUSTOMER_GROUP = "customer_group"  # 客户群: mass-send task the owner confirms
    APPCHAT = "appchat"  # internal group created by the app
    WEBHOOK = "webhook"  # group with a robot key

    @property
    def label(self) -> str:
        return KIND_LABELS[self.value]


KIND_LABELS = {"customer_group": "客户群", "appchat": "应用群聊", "webhook": "群机器人"}


class GroupState(StrEnum):
    ACTIVE = "active"
    DISMISSED = "dismissed"  # kept for history, never a broadcast target


class Role(StrEnum):
    OFFICER = "officer"  # 民警
    AUXILIARY = "auxiliary"  # 辅警
    GRID_WORKER = "grid_worker"  # 网格员
    STATION_ADMIN = "station_admin"  # 派出所管理员
    SUPERVISOR = "supervisor"  # 乡镇街道 supervisor (escalation target)

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.OFFICER: "民警",
    Role.AUXILIARY: "辅警",
    Role.GRID_WORKER: "网格员",
    Role.STATION_ADMIN: "派出所管理员",
    Role.SUPERVISOR: "乡镇街道负责人",
}
POLICE_ROLES = frozenset({Role.OFFICER, Role.AUXILIARY})


@dataclass(frozen=True, slots=True)
class Node:
    """A node of the tree. `code` is GB/T 2260 / NBS where one exists, else a local code."""

    code: str
    name: str
    level: Level
    parent: str = ""  # "" for the root
    urban: bool = False  # 社区 (1+2+N) rather than 村 (1+N); meaningful on villages and grids

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str) -> Node:
        raw: dict[str, Any] = json.loads(data)
        raw["level"] = Level(raw["level"])
        return cls(**raw)


class Group(NamedTuple):
    """A resident group hung on a node.

    A NamedTuple rather than a dataclass: a whole-city query builds 100,000 of them, and a
    tuple is made in one C call from its decoded columns (codec.decode_rows). Change one with
    `group._replace(...)`.
    """

    chat_id: str
    name: str
    kind: DeliveryKind
    node: str = ""  # "" while unplaced
    owner: str = ""  # WeCom userid of the owner (grid worker for customer groups)
    member_count: int = 0
    state: GroupState = GroupState.ACTIVE
    webhook_key: str = ""  # only for webhook groups
    tags: tuple[str, ...] = ()
    updated_at: float = 0.0
    dismissed_at: float = 0.0

    @property
    def is_target(self) -> bool:
        return self.state is GroupState.ACTIVE and bool(self.node)

    def to_json(self) -> str:
        return json.dumps(self._asdict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str) -> Group:
        raw: dict[str, Any] = json.loads(data)
        raw["kind"] = DeliveryKind(raw["kind"])
        raw["state"] = GroupState(raw["state"])
        raw["tags"] = tuple(raw.get("tags", ()))
        return cls(**raw)


@dataclass(frozen=True, slots=True)
class Person:
    """Staff known to the bot, by WeCom userid, with role and the nodes they cover."""

    userid: str
    name: str
    role: Role
    nodes: tuple[str, ...] = ()
    mobile_masked: str = ""  # never the full number; see collect/ for protected storage

    @property
    def is_police(self) -> bool:
        return self.role in POLICE_ROLES

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str) -> Person:
        raw: dict[str, Any] = json.loads(data)
        raw["role"] = Role(raw["role"])
        raw["nodes"] = tuple(raw.get("nodes", ()))
        return cls(**raw)


@dataclass(frozen=True, slots=True)
class UnplacedGroup:
    """A group the naming rule could not place; listed for an admin, never guessed."""

    chat_id: str
    name: str
    reason: str
    seen_at: float = 0.0
    candidates: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class GroupChange:
    """One entry of a group's history: who changed what, when (member counts are not logged)."""

    id: str
    at: float
    actor: str
    source: str
    what: str  # created | updated | moved | dismissed | restored
    changes: dict[str, Any]  # created: the full record; otherwise field -> {"from", "to"}
