"""Customer-group mass-send tasks (客户群群发) created by add_msg_template."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

NOT_SENT, SENT = 0, 2  # get_groupmsg_task status
RESULT_PENDING, RESULT_SENT, RESULT_NOT_MEMBER, RESULT_QUOTA = 0, 1, 2, 3  # send_result status


@dataclass(slots=True)
class Task:
    """One add_msg_template call: one sender (the owner), the chats accepted for them."""

    msgid: str
    sender: str
    text: str
    attachments: list[dict[str, Any]]
    create_time: float
    chat_ids: tuple[str, ...]
    status: int = NOT_SENT
    send_time: float = 0.0
    cancelled: bool = False
    confirm_due: float | None = None  # when the owner is going to confirm, once decided
    results: dict[str, tuple[int, float]] = field(default_factory=dict)  # chat -> status, time
    remind_times: list[float] = field(default_factory=list)  # remind_groupmsg_send calls
    timeline: list[tuple[str, float, str]] = field(default_factory=list)  # event, at, detail

    @property
    def open(self) -> bool:
        """Still waiting for its owner."""
        return self.status == NOT_SENT and not self.cancelled

    def note(self, event: str, at: float, detail: str = "") -> None:
        self.timeline.append((event, at, detail))

    def first(self, event: str) -> float | None:
        """Time of the first `event` (created, reminded, escalated, confirmed, cancelled)."""
        return next((at for name, at, _ in self.timeline if name == event), None)

    def summary(self) -> dict[str, Any]:
        return {
            "msgid": self.msgid,
            "creator": self.sender,
            "create_time": int(self.create_time),
            "create_type": 0,  # 企业发表
            "text": {"content": self.text},
            "attachments": self.attachments,
        }

    def view(self) -> dict[str, Any]:
        """Everything a test or /sim/tasks wants to see."""
        return {
            **self.summary(),
            "status": self.status,
            "send_time": self.send_time,
            "cancelled": self.cancelled,
            "chat_ids": list(self.chat_ids),
            "results": {c: {"status": s, "send_time": t} for c, (s, t) in self.results.items()},
            "timeline": [{"event": e, "at": at, "detail": d} for e, at, d in self.timeline],
        }


@dataclass(slots=True)
class _Series:
    """Tasks in creation order with their times, for bisecting a time window."""

    tasks: list[Task] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    def add(self, task: Task) -> None:
        # the clock never runs backwards, so appending keeps both lists sorted
        self.tasks.append(task)
        self.times.append(task.create_time)

    def page(self, start: float, end: float, offset: int, limit: int) -> tuple[list[Task], bool]:
        """Tasks created in [start, end] from `offset` on; whether more follow."""
        lo, hi = bisect_left(self.times, start), bisect_right(self.times, end)
        first = lo + offset
        return self.tasks[first : min(hi, first + limit)], first + limit < hi


@dataclass(slots=True)
class TaskStore:
    by_id: dict[str, Task] = field(default_factory=dict)
    everything: _Series = field(default_factory=_Series)
    by_creator: defaultdict[str, _Series] = field(default_factory=lambda: defaultdict(_Series))

    def add(self, task: Task) -> None:
        self.by_id[task.msgid] = task
        self.everything.add(task)
        self.by_creator[task.sender].add(task)

    def get(self, msgid: str) -> Task | None:
        return self.by_id.get(msgid)

    def page(
        self, start: float, end: float, *, creator: str, offset: int, limit: int
    ) -> tuple[list[Task], bool]:
        """One page of tasks created in [start, end], optionally by one creator."""
        series = self.by_creator.get(creator) if creator else self.everything
        return series.page(start, end, offset, limit) if series else ([], False)

    def __len__(self) -> int:
        return len(self.by_id)
