"""Records of a case (事件): its kind, category, clocks, dispute details and timeline."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from typing import Any


class CaseKind(StrEnum):
    PROBLEM = "problem"  # 问题 (found on patrol, reported by a resident)
    REQUEST = "request"  # 求助
    CLUE = "clue"  # 线索 on a 协查通报
    DISPUTE = "dispute"  # 矛盾纠纷

    @property
    def label(self) -> str:
        return {"problem": "问题", "request": "求助", "clue": "线索", "dispute": "矛盾纠纷"}[
            self.value]


class Category(StrEnum):
    SECURITY = "治安"
    DISPUTE = "矛盾纠纷"
    FIRE = "消防安全"
    TRAFFIC = "交通"
    HELP = "求助"
    OTHER = "其他"


class Urgency(StrEnum):
    URGENT = "紧急"
    NORMAL = "一般"


class Status(StrEnum):
    NEW = "new"  # 待接单
    ACCEPTED = "accepted"  # 已接单
    ON_SITE = "on_site"  # 已到场
    CLOSED = "closed"  # 已办结
    REOPENED = "reopened"  # 不满意，待回访

    @property
    def label(self) -> str:
        return {"new": "待接单", "accepted": "已接单", "on_site": "已到场", "closed": "已办结",
                "reopened": "不满意·待回访"}[self.value]

    @property
    def open(self) -> bool:
        return self is not Status.CLOSED


class Channel(StrEnum):
    APP = "app"  # a member (grid worker, officer) in app chat
    KF = "kf"  # a resident through 微信客服


SETTLE_LEVELS = ("网格", "村居", "乡镇", "移交")
ROUTES = ("人民调解", "行政调解", "司法调解")
OUTCOMES = ("调解成功", "未成功", "移交")
SATISFACTION = ("满意", "基本满意", "不满意")


@dataclass(frozen=True, slots=True)
class Case:
    """One case, stored as JSON in its hash `{case:<n>}`."""

    id: str  # "E12"
    kind: CaseKind
    category: Category
    urgency: Urgency
    node: str
    path: tuple[str, ...]  # root … node codes at creation, for scope checks and assessment
    township: str  # the 乡镇街道 on the path ("" above it): escalation and the open queues
    county: str
    text: str  # scrubbed description
    channel: Channel
    reporter: str  # member userid; "" for residents (their identity is sealed below)
    created_at: float
    respond_due: float
    status: Status = Status.NEW
    officers: tuple[str, ...] = ()  # the node's police, notified at creation
    grid_workers: tuple[str, ...] = ()  # may see it; relay answers to residents
    handler: str = ""  # who holds it now ("" while nobody has taken it)
    accepted_by: str = ""
    accepted_at: float = 0.0
    first_response_at: float = 0.0
    arrived_at: float = 0.0
    closed_at: float = 0.0
    closed_by: str = ""
    result: str = ""
    escalation: int = 0  # 0 none, 1 township supervisor, 2 county
    escalated_to: tuple[str, ...] = ()
    satisfaction: str = ""
    reopened: int = 0
    notice: int = 0  # the 协查通报 of a clue
    sealed_reporter: str = ""  # FieldCipher-sealed resident identity (external_userid|open_kfid)
    photos: tuple[str, ...] = ()  # media ids
    location: str = ""  # "lat,lon label"
    parties: tuple[str, ...] = ()  # dispute parties, masked names only
    settle_level: str = ""
    route: str = ""
    outcome: str = ""
    relayed: int = 0  # answers handed to the grid worker because 微信客服 could not deliver

    @property
    def number(self) -> int:
        return int(self.id[1:])

    @property
    def is_clue(self) -> bool:
        return self.kind is CaseKind.CLUE

    def with_(self, **changes: Any) -> Case:
        return replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> Case:
        data: dict[str, Any] = json.loads(raw)
        names = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in names}
        for key in ("path", "officers", "grid_workers", "escalated_to", "photos", "parties"):
            data[key] = tuple(data.get(key, ()))
        data["kind"] = CaseKind(data["kind"])
        data["category"] = Category(data["category"])
        data["urgency"] = Urgency(data["urgency"])
        data["status"] = Status(data["status"])
        data["channel"] = Channel(data["channel"])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a case's timeline. `text` is scrubbed; identities never appear in it."""

    at: float
    actor: str  # userid, "居民", "系统"
    action: str  # 上报 接单 答复 到场 办结 转交 升级 照片 位置 回访 …
    text: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> Entry:
        data: dict[str, Any] = json.loads(raw)
        return cls(float(data["at"]), data["actor"], data["action"], data.get("text", ""))


@dataclass(frozen=True, slots=True)
class CaseView:
    """What one viewer may see of a case: the case, its timeline, and (issuing officer only)
    the tipster's identity, opened for this view and audited."""

    case: Case
    timeline: list[Entry] = field(default_factory=list)
    reporter_label: str = ""  # "网格员甲（w1）", "居民（微信客服）" or the opened identity
