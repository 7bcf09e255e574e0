"""Records of a police notice: its level, target, content, lifecycle and per-group state."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any


class NoticeLevel(StrEnum):
    """The three levels an officer chooses from; urgent ones are escalated more insistently."""

    URGENT = "urgent"  # 紧急预警
    ASSIST = "assist"  # 协查通报
    NORMAL = "normal"  # 普通通知

    @property
    def label(self) -> str:
        return {"urgent": "紧急预警", "assist": "协查通报", "normal": "普通通知"}[self.value]


class NoticeKind(StrEnum):
    """An original notice or a follow-up that reaches exactly the original's recipients."""

    ORIGINAL = "original"
    UPDATE = "update"  # 更新
    RETRACT = "retract"  # 撤回
    SOLVED = "solved"  # 已破案

    @property
    def label(self) -> str:
        return {"original": "通知", "update": "更新", "retract": "撤回", "solved": "已破案"}[
            self.value
        ]


class NoticeStatus(StrEnum):
    """Lifecycle of a notice as a whole."""

    PENDING_CONFIRM = "pending_confirm"  # preview shown, waiting for 确认
    PENDING_APPROVAL = "pending_approval"  # waiting for a second officer's 批准
    SCHEDULED = "scheduled"  # confirmed, fires at scheduled_at
    SENDING = "sending"  # the delivery engine owns it
    SETTLED = "settled"  # every group final (or the final horizon passed)
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return {
            "pending_confirm": "待确认", "pending_approval": "待批准", "scheduled": "已定时",
            "sending": "发送中", "settled": "已结束", "cancelled": "已取消",
        }[self.value]


class PairState(StrEnum):
    """State of one (notice, group) pair.

    planned → submitted → awaiting_owner → delivered | failed | late | uncertain.
    `submitted` is the idempotency record written before any send; `late` (the deadline passed
    while the owner had not confirmed) may still become delivered or failed. A follow-up's
    pair is `skipped` when the original never reached that group (follow-ups go exactly where
    the original went).
    """

    PLANNED = "planned"
    SUBMITTED = "submitted"
    AWAITING_OWNER = "awaiting_owner"
    DELIVERED = "delivered"
    FAILED = "failed"
    LATE = "late"
    UNCERTAIN = "uncertain"
    SKIPPED = "skipped"

    @property
    def label(self) -> str:
        return PAIR_LABELS[self]

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


PAIR_LABELS = {
    PairState.PLANNED: "待发送", PairState.SUBMITTED: "发送中",
    PairState.AWAITING_OWNER: "待群主确认", PairState.DELIVERED: "已送达",
    PairState.FAILED: "失败", PairState.LATE: "超时未确认", PairState.UNCERTAIN: "状态不明",
    PairState.SKIPPED: "无需发送",
}
FINAL_STATES = frozenset(
    {PairState.DELIVERED, PairState.FAILED, PairState.UNCERTAIN, PairState.SKIPPED}
)
PENDING_STATES = frozenset(
    {PairState.PLANNED, PairState.SUBMITTED, PairState.AWAITING_OWNER, PairState.LATE}
)


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """Whom a notice reaches: tree nodes (codes), optional group tags, excluded nodes/groups."""

    codes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, list[str]]:
        return {"codes": list(self.codes), "tags": list(self.tags), "exclude": list(self.exclude)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TargetSpec:
        return cls(tuple(raw.get("codes", ())), tuple(raw.get("tags", ())),
                   tuple(raw.get("exclude", ())))


@dataclass(frozen=True, slots=True)
class Content:
    """What residents read: text or markdown, with an optional image and link."""

    text: str
    markdown: bool = False
    image_url: str = ""
    link_url: str = ""
    link_title: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Content:
        return cls(**{k: raw[k] for k in ("text", "markdown", "image_url", "link_url",
                                          "link_title") if k in raw})


@dataclass(frozen=True, slots=True)
class Notice:
    """One notice (original or follow-up), stored as a Redis hash."""

    id: int
    level: NoticeLevel
    content: Content
    target: TargetSpec
    issuer: str
    created_at: float
    kind: NoticeKind = NoticeKind.ORIGINAL
    parent: int = 0  # the original, for follow-ups
    status: NoticeStatus = NoticeStatus.PENDING_CONFIRM
    scheduled_at: float = 0.0
    started_at: float = 0.0  # the officer's command that released it: SLA clock starts here
    needs_approval: bool = False
    approver: str = ""
    settled_at: float = 0.0
    target_label: str = ""  # human description of the target, for previews and reports
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def deadline_at(self) -> float:
        """Set by the engine from settings; kept in `extra` so reports need no settings."""
        return float(self.extra.get("deadline_at", "0") or 0)

    @property
    def title(self) -> str:
        """`【紧急预警】#17` or `【紧急预警·更新】#18（原 #17）`."""
        kind = "" if self.kind is NoticeKind.ORIGINAL else "·" + self.kind.label
        origin = f"（原 #{self.parent}）" if self.parent else ""
        return f"【{self.level.label}{kind}】#{self.id}{origin}"

    def to_hash(self) -> dict[str, str]:
        return {
            "id": str(self.id), "level": self.level.value,
            "content": json.dumps(self.content.to_dict(), ensure_ascii=False),
            "target": json.dumps(self.target.to_dict(), ensure_ascii=False),
            "issuer": self.issuer, "created_at": repr(self.created_at), "kind": self.kind.value,
            "parent": str(self.parent), "status": self.status.value,
            "scheduled_at": repr(self.scheduled_at), "started_at": repr(self.started_at),
            "needs_approval": "1" if self.needs_approval else "0", "approver": self.approver,
            "settled_at": repr(self.settled_at), "target_label": self.target_label,
            "extra": json.dumps(self.extra, ensure_ascii=False),
        }

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> Notice:
        return cls(
            id=int(raw["id"]), level=NoticeLevel(raw["level"]),
            content=Content.from_dict(json.loads(raw["content"])),
            target=TargetSpec.from_dict(json.loads(raw["target"])), issuer=raw["issuer"],
            created_at=float(raw["created_at"]), kind=NoticeKind(raw.get("kind", "original")),
            parent=int(raw.get("parent", "0") or 0),
            status=NoticeStatus(raw.get("status", "pending_confirm")),
            scheduled_at=float(raw.get("scheduled_at", "0") or 0),
            started_at=float(raw.get("started_at", "0") or 0),
            needs_approval=raw.get("needs_approval") == "1", approver=raw.get("approver", ""),
            settled_at=float(raw.get("settled_at", "0") or 0),
            target_label=raw.get("target_label", ""),
            extra=json.loads(raw.get("extra") or "{}"),
        )

    def with_(self, **changes: Any) -> Notice:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class PlannedGroup:
    """A target group as frozen into the notice's plan; workers need nothing else to send."""

    chat_id: str
    name: str
    kind: str  # DeliveryKind value
    node: str
    path: tuple[str, ...]  # ancestor codes, root first, ending with `node`
    owner: str = ""
    members: int = 0
    webhook_key: str = ""
    unit: str = ""  # customer groups: the owner task this group belongs to
    officers: tuple[str, ...] = ()  # the grid's officers (escalation, late reports)
    supervisors: tuple[str, ...] = ()  # the township's supervisors

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str) -> PlannedGroup:
        raw: dict[str, Any] = json.loads(data)
        for key in ("path", "officers", "supervisors"):
            raw[key] = tuple(raw.get(key, ()))
        return cls(**raw)


@dataclass(frozen=True, slots=True)
class PairRecord:
    """The stored state of one pair (JSON in the notice's `pair` hash; Lua reads it too)."""

    state: PairState
    attempts: int = 0
    worker: str = ""
    at: float = 0.0  # time of the last transition (simulated seconds)
    delivered_at: float = 0.0
    detail: str = ""

    @classmethod
    def from_json(cls, data: str) -> PairRecord:
        raw: dict[str, Any] = json.loads(data)
        return cls(PairState(raw["s"]), int(raw.get("a", 0)), str(raw.get("w", "")),
                   float(raw.get("t", 0)), float(raw.get("dt", 0)), str(raw.get("d", "")))

    def to_json(self) -> str:
        return json.dumps({"s": self.state.value, "a": self.attempts, "w": self.worker,
                           "t": self.at, "dt": self.delivered_at, "d": self.detail},
                          ensure_ascii=False, separators=(",", ":"))
