"""Typed records of 说事议事: matters, the roll of voters, ballots (chain entries), results.

A matter's electorate is a snapshot of the village's 一标三实 records taken when it is opened
(residents_console_votes.md §5: "keep the eligibility roll as a snapshot"). Voters are named
only by a masked head (or person) name and an address; their ballots are stored under a keyed
slot that names no voter, and the published chain entries name neither.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any


class Body(StrEnum):
    VILLAGERS = "villagers"  # 村民会议
    REPRESENTATIVES = "representatives"  # 村民代表会议

    @property
    def label(self) -> str:
        return {"villagers": "村民会议", "representatives": "村民代表会议"}[self.value]

    @classmethod
    def parse(cls, text: str) -> Body | None:
        return next((b for b in cls if text.strip() in (b.value, b.label)), None)


class Electorate(StrEnum):
    HOUSEHOLDS = "households"  # 每户一票
    ADULTS = "adults"  # 年满十八周岁的村民每人一票

    @property
    def label(self) -> str:
        return {"households": "每户一票", "adults": "18周岁以上村民每人一票"}[self.value]

    @property
    def unit(self) -> str:
        return {"households": "户", "adults": "人"}[self.value]

    @classmethod
    def parse(cls, text: str) -> Electorate | None:
        words = {"户": cls.HOUSEHOLDS, "每户": cls.HOUSEHOLDS, "每户一票": cls.HOUSEHOLDS,
                 "按户": cls.HOUSEHOLDS, "人": cls.ADULTS, "每人": cls.ADULTS,
                 "按人": cls.ADULTS, "每人一票": cls.ADULTS, "成年人": cls.ADULTS}
        wanted = text.strip()
        return words.get(wanted) or next((e for e in cls if wanted == e.value), None)


class Rule(StrEnum):
    MAJORITY = "majority"  # 到会人员过半数 (组织法 Art. 22)
    TWO_THIRDS = "two_thirds"  # 全体成员三分之二以上同意 (农村土地承包法: 承包方案)

    @property
    def label(self) -> str:
        return {"majority": "到会人员过半数同意",
                "two_thirds": "全体成员三分之二以上同意"}[self.value]


class Mode(StrEnum):
    ONLINE = "online"  # 每户（人）一个签名链接
    HANDS = "hands"  # 会上举手表决，网格员登记

    @property
    def label(self) -> str:
        return {"online": "网上表决", "hands": "举手表决"}[self.value]


class Status(StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return {"scheduled": "未开始", "open": "表决中", "closed": "已结束",
                "cancelled": "已撤销"}[self.value]


DEFAULT_OPTIONS = ("同意", "不同意", "弃权")


@dataclass(frozen=True, slots=True)
class Matter:
    id: str
    village: str
    village_name: str
    title: str
    background: str
    options: tuple[str, ...]
    electorate: Electorate
    body: Body
    rule: Rule
    mode: Mode
    opens_at: float
    closes_at: float
    organiser: str
    created_at: float
    allow_change: bool = False
    status: Status = Status.SCHEDULED
    eligible: int = 0  # size of the roll snapshot
    roll_hash: str = ""
    notice_ids: tuple[int, ...] = ()
    result: dict[str, Any] = field(default_factory=dict)
    closed_by: str = ""

    def with_(self, **changes: Any) -> Matter:
        return replace(self, **changes)

    def to_redis(self) -> dict[str, str]:
        raw = asdict(self)
        out = {k: str(v) for k, v in raw.items() if k not in
               ("options", "notice_ids", "result", "allow_change")}
        out["options"] = json.dumps(list(self.options), ensure_ascii=False)
        out["notice_ids"] = json.dumps(list(self.notice_ids))
        out["result"] = json.dumps(self.result, ensure_ascii=False, sort_keys=True)
        out["allow_change"] = "1" if self.allow_change else "0"
        out["n_options"] = str(len(self.options))
        return out

    @classmethod
    def from_redis(cls, raw: dict[str, str]) -> Matter:
        return cls(
            id=raw["id"], village=raw["village"], village_name=raw.get("village_name", ""),
            title=raw["title"], background=raw.get("background", ""),
            options=tuple(json.loads(raw["options"])), electorate=Electorate(raw["electorate"]),
            body=Body(raw["body"]), rule=Rule(raw["rule"]), mode=Mode(raw["mode"]),
            opens_at=float(raw["opens_at"]), closes_at=float(raw["closes_at"]),
            organiser=raw["organiser"], created_at=float(raw["created_at"]),
            allow_change=raw.get("allow_change") == "1", status=Status(raw["status"]),
            eligible=int(raw.get("eligible") or 0), roll_hash=raw.get("roll_hash", ""),
            notice_ids=tuple(json.loads(raw.get("notice_ids") or "[]")),
            result=json.loads(raw.get("result") or "{}"), closed_by=raw.get("closed_by", ""),
        )


@dataclass(frozen=True, slots=True)
class Voter:
    """One line of the roll: a household (or an adult), named only in masked form."""

    vid: str  # random; never shown to the organiser next to a ballot
    label: str  # masked head (or person) name + address
    grid: str  # the grid whose worker passes the link on
    who: str = ""  # household address id / person record id (only to find a resident's link)

    def to_json(self) -> str:
        return json.dumps({"label": self.label, "grid": self.grid}, ensure_ascii=False)

    @classmethod
    def from_json(cls, vid: str, data: str) -> Voter:
        raw = json.loads(data)
        return cls(vid, raw["label"], raw["grid"])


@dataclass(frozen=True, slots=True)
class Tally:
    """What closing found: turnout against the quorum, each option's count, the rule."""

    mode: Mode
    eligible: int
    present: int
    counts: tuple[int, ...]
    quorum_met: bool
    adopted: int  # index of the option meeting the rule, or -1
    entries: int
    head: str

    @property
    def passed(self) -> bool:
        return self.quorum_met and self.adopted >= 0

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode.value, "eligible": self.eligible, "present": self.present,
                "counts": list(self.counts), "quorum_met": self.quorum_met,
                "adopted": self.adopted, "entries": self.entries, "head": self.head}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Tally:
        return cls(Mode(raw["mode"]), int(raw["eligible"]), int(raw["present"]),
                   tuple(int(c) for c in raw["counts"]), bool(raw["quorum_met"]),
                   int(raw["adopted"]), int(raw["entries"]), str(raw["head"]))
