"""The simulated corp's directory, customer groups (客户群), app chats and group robots."""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8))  # WeCom's natural month is Beijing time


def month_of(at: float) -> tuple[str, int]:
    """("YYYY-MM", days in that month) of a simulated epoch time in Beijing time."""
    day = datetime.fromtimestamp(at, CHINA)
    return f"{day.year:04d}-{day.month:02d}", calendar.monthrange(day.year, day.month)[1]


@dataclass(slots=True)
class Directory:
    """Members visible to the app and whom each group owner escalates to (grid officers)."""

    users: dict[str, str] = field(default_factory=dict)
    escalation: dict[str, tuple[str, ...]] = field(default_factory=dict)
    escalates: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def load(self, users: Mapping[str, str], escalation: Mapping[str, Sequence[str]]) -> None:
        self.users.update(users)
        for owner, officers in escalation.items():
            for officer in self.escalation.get(owner, ()):
                self.escalates[officer].discard(owner)
            self.escalation[owner] = tuple(officers)
            for officer in officers:
                self.escalates[officer].add(owner)

    def owners_escalating_to(self, officer: str) -> set[str]:
        return self.escalates.get(officer, set())


@dataclass(slots=True)
class CustomerGroup:
    chat_id: str
    name: str
    owner: str
    member_count: int
    create_time: int
    notice: str = ""
    status: int = 0  # 0 正常, 1 跟进人离职, 2 离职继承中, 3 离职继承完成
    dismissed: bool = False
    admins: tuple[str, ...] = ()
    received: dict[str, int] = field(default_factory=dict)  # month -> group-sends received

    def has_quota(self, at: float, monthly: int | None) -> bool:
        month, days = month_of(at)
        return self.received.get(month, 0) < (days if monthly is None else monthly)

    def count_receipt(self, at: float) -> None:
        month, _ = month_of(at)
        self.received[month] = self.received.get(month, 0) + 1


@dataclass(frozen=True, slots=True)
class AppChat:
    chat_id: str
    name: str
    members: tuple[str, ...]


@dataclass(slots=True)
class GroupTable:
    """Customer groups in insertion order, indexed by owner; app chats; robots."""

    customer: dict[str, CustomerGroup] = field(default_factory=dict)
    by_owner: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    appchats: dict[str, AppChat] = field(default_factory=dict)
    robots: dict[str, str] = field(default_factory=dict)  # key -> chat_id
    _active: list[str] | None = None  # cache for unfiltered listing, rebuilt after changes

    def add(self, group: CustomerGroup) -> None:
        old = self.customer.get(group.chat_id)
        if old is not None:
            self.by_owner[old.owner].remove(old.chat_id)
        self.customer[group.chat_id] = group
        self.by_owner[group.owner].append(group.chat_id)
        self._active = None

    def get(self, chat_id: str) -> CustomerGroup | None:
        group = self.customer.get(chat_id)
        return None if group is None or group.dismissed else group

    def transfer(self, chat_id: str, owner: str) -> None:
        group = self.customer[chat_id]
        self.by_owner[group.owner].remove(chat_id)
        group.owner = owner
        self.by_owner[owner].append(chat_id)

    def dismiss(self, chat_id: str) -> None:
        self.customer[chat_id].dismissed = True
        self._active = None

    def listing(self, owners: Sequence[str], status: int) -> Sequence[str]:
        """chat_ids groupchat/list pages through (dismissed groups are gone).

        The unfiltered list is cached between changes, so paging costs no scan per request.
        """
        ids: Iterable[str]
        if owners:
            ids = [c for owner in dict.fromkeys(owners) for c in self.by_owner.get(owner, ())]
        else:
            if self._active is None:
                self._active = [c for c, g in self.customer.items() if not g.dismissed]
            if status == 0:
                return self._active
            ids = self._active
        groups = (self.customer[c] for c in ids)
        return [g.chat_id for g in groups if not g.dismissed and status in (0, g.status)]
