"""The planner: what a notice costs against WeCom's ceilings, and when it can be done.

`machine_floor` is the fastest the ceilings allow for every machine step (webhook and appchat
sends; for customer groups the task per owner and the 1:1 message to that owner), treating
each ceiling as a sliding window: `amount` units under `limit` per `window` need
(⌈amount / limit⌉ − 1) windows before the last unit may go. bench/broadcast.py prints this
same function. The human part (owners confirming customer-group tasks) is forecast from the
confirmation delays observed on earlier notices.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.settings import BroadcastSettings, CeilingSettings
from broadcasts.costs import HOUR, MINUTE
from broadcasts.models import PlannedGroup
from registry.models import DeliveryKind


@dataclass(frozen=True, slots=True)
class Demand:
    """What one notice asks of each ceiling."""

    webhook_groups: int = 0
    most_per_robot: int = 0
    appchat_groups: int = 0
    appchat_person_times: int = 0
    largest_appchat: int = 0
    customer_groups: int = 0
    tasks: int = 0  # add_msg_template calls (one per owner and ≤2,000 groups)
    owners: int = 0  # 1:1 app messages to owners

    @property
    def total(self) -> int:
        return self.webhook_groups + self.appchat_groups + self.customer_groups


@dataclass(frozen=True, slots=True)
class Floor:
    """The machine floor in simulated seconds and the ceiling that sets it."""

    seconds: float
    binding: str  # Chinese description, "" when nothing binds
    parts: dict[str, float] = field(default_factory=dict)


def window_floor(amount: int, limit: int, window: float, used: int = 0) -> float:
    """Seconds until the last of `amount` units may be granted under `limit` per `window`."""
    if amount <= 0:
        return 0.0
    return max(0, math.ceil((amount + used) / limit) - 1) * window


def demand_of(groups: Sequence[PlannedGroup], chat_ids_per_task: int = 2000) -> Demand:
    """Count what sending to `groups` costs."""
    kinds = Counter(g.kind for g in groups)
    robots = Counter(g.webhook_key for g in groups if g.kind == DeliveryKind.WEBHOOK)
    appchat = [g.members for g in groups if g.kind == DeliveryKind.APPCHAT]
    per_owner = Counter(g.owner for g in groups if g.kind == DeliveryKind.CUSTOMER_GROUP)
    return Demand(
        webhook_groups=kinds[DeliveryKind.WEBHOOK],
        most_per_robot=max(robots.values(), default=0),
        appchat_groups=len(appchat),
        appchat_person_times=sum(max(1, m) for m in appchat),
        largest_appchat=max(appchat, default=0),
        customer_groups=kinds[DeliveryKind.CUSTOMER_GROUP],
        tasks=sum(math.ceil(n / chat_ids_per_task) for n in per_owner.values()),
        owners=len(per_owner),
    )


def machine_floor(demand: Demand, ceilings: CeilingSettings, *, latency: float = 0.0,
                  used: dict[str, int] | None = None) -> Floor:
    """The fastest every machine step can finish under `ceilings` (simulated seconds).

    `used` gives what the current windows already hold (bucket name → amount), e.g. from an
    earlier notice; `latency` is one API round trip, added once per sequential step.
    """
    c, u = ceilings, used or {}
    parts = {
        "应用群聊每分钟人次": window_floor(demand.appchat_person_times,
                                  c.appchat_person_times_per_minute, MINUTE,
                                  u.get("appchat:pt:m", 0)),
        "应用群聊每小时人次": window_floor(demand.appchat_person_times,
                                  c.appchat_person_times_per_hour, HOUR,
                                  u.get("appchat:pt:h", 0)),
        "群机器人每分钟 20 条": window_floor(demand.most_per_robot, c.robot_messages_per_minute,
                                    MINUTE),
    }
    for api, amount in (("appchat_send", demand.appchat_groups),
                        ("webhook_send", demand.webhook_groups),
                        ("add_msg_template", demand.tasks), ("message_send", demand.owners)):
        parts[f"{api} 每分钟调用"] = window_floor(amount, c.api_calls_per_minute, MINUTE,
                                             u.get(f"api:{api}:m", 0))
        parts[f"{api} 每小时调用"] = window_floor(amount, c.api_calls_per_hour, HOUR,
                                             u.get(f"api:{api}:h", 0))
    binding, worst = max(parts.items(), key=lambda item: item[1])
    steps = 2 if demand.tasks else (1 if demand.total else 0)
    return Floor(worst + steps * latency, binding if worst > 0 else "", parts)


def poll_interval(units: int, settings: BroadcastSettings) -> float:
    """Seconds between status polls of one owner task so that all fit the reserved budget.

    A fifth of the polling budget is kept for send-result reads and checks before reminders.
    """
    budget = settings.ceilings.api_calls_per_minute * settings.poll_budget_share * 0.8
    if units <= 0:
        return settings.poll_interval_seconds
    return max(settings.poll_interval_seconds, MINUTE * units / budget)


@dataclass(frozen=True, slots=True)
class Forecast:
    """The planner's answer, shown in the preview before 确认."""

    demand: Demand
    floor: Floor
    deadline: float
    poll_interval: float
    quota_exhausted: tuple[str, ...] = ()
    no_officer: int = 0
    no_supervisor: int = 0
    confirm_within: float | None = None  # expected share of owners confirming in time
    confirm_p90: float | None = None
    by_county: dict[str, int] = field(default_factory=dict)
    owners: OwnerOutlook | None = None

    @property
    def problems(self) -> list[str]:
        """Why the deadline cannot be met for every group (Chinese, one reason per line)."""
        out: list[str] = []
        if self.floor.seconds > self.deadline:
            out.append(f"按企业微信频率上限（{self.floor.binding}），机器发送至少需要 "
                       f"{fmt_duration(self.floor.seconds)}，"
                       f"超过 {fmt_duration(self.deadline)} 时限")
        if self.quota_exhausted:
            out.append(f"{len(self.quota_exhausted)} 个群本月群发次数已用完，将无法送达")
        if self.demand.customer_groups:
            share = "" if self.confirm_within is None else \
                f"，按历史约 {self.confirm_within:.1%} 的群主能在时限内确认"
            basis = self.owners.basis() if self.owners is not None else ""
            out.append(f"{self.demand.customer_groups} 个客户群需 {self.demand.owners} 位群主"
                       f"在企业微信中确认后才会发出{share}{basis}")
        if self.owners is not None and self.owners.likely_late:
            out.append(self.owners.late_text())
        if self.no_officer:
            out.append(f"{self.no_officer} 个群所在网格没有登记民警，群主未确认时无法升级提醒")
        if self.no_supervisor:
            out.append(f"{self.no_supervisor} 个群所在乡镇（街道）没有登记督办人员，"
                       "民警催办无果时无法再升级")
        return out

    def text(self) -> str:
        """The multi-line preview text."""
        d = self.demand
        n_spent = len(self.quota_exhausted)
        spent = f"（另有 {n_spent} 个群本月群发次数已用完）" if n_spent else ""
        lines = [
            f"目标 {d.total + len(self.quota_exhausted)} 个群{spent}：客户群 {d.customer_groups}"
            f"（群主 {d.owners} 人）、"
            f"应用群聊 {d.appchat_groups}（{d.appchat_person_times} 人次）、"
            f"群机器人 {d.webhook_groups}",
            f"机器发送预计 {fmt_duration(max(1.0, self.floor.seconds))}内完成"
            + (f"（受限于{self.floor.binding}）" if self.floor.binding else ""),
        ]
        if self.confirm_p90 is not None:
            lines.append(f"群主确认：历史 90% 在 {fmt_duration(self.confirm_p90)} 内")
        problems = self.problems
        if problems:
            lines.append("注意：" + "；".join(problems))
        return "\n".join(lines)


LIKELY_LATE = 0.5  # an owner who confirmed in time less often than this is named
MIN_GLOBAL = 20  # owners asked before the city-wide share stands in for owners without history
NAMED_MAX = 10


@dataclass(frozen=True, slots=True)
class OwnerOutlook:
    """What the history says about the owners of a notice: each owner's share of tasks
    confirmed in time among all tasks they were asked (never-confirmed ones included)."""

    expected: float | None  # mean over owners (own history, else the city-wide share)
    with_history: int
    asked: int  # tasks counted city-wide
    in_time: int
    likely_late: tuple[tuple[str, int, int, tuple[str, ...]], ...] = ()  # owner, ok, n, groups

    def basis(self) -> str:
        if not self.asked:
            return ""
        # never 「确认 <数字>」: that is the confirm command's shape
        return (f"（历史：群主共被请求 {self.asked} 次，其中 {self.in_time} 次按时完成；"
                f"本次群主中 {self.with_history} 位有个人记录）")

    def late_text(self) -> str:
        rows = [f"{owner}（以往 {ok}/{n} 次按时）：{'、'.join(groups[:3])}"
                + (f" 等 {len(groups)} 个群" if len(groups) > 3 else "")
                for owner, ok, n, groups in self.likely_late[:NAMED_MAX]]
        more = len(self.likely_late) - NAMED_MAX
        tail = f"；另有 {more} 位" if more > 0 else ""
        return "可能超时的群（群主以往多未按时确认）：" + "；".join(rows) + tail


def owner_outlook(groups: Sequence[PlannedGroup], record: dict[str, str],
                  names: dict[str, str]) -> OwnerOutlook | None:
    """The outlook for the owners of `groups` from `record` (owner:asked / owner:in_time)."""
    by_owner: dict[str, list[str]] = defaultdict(list)
    for g in groups:
        if g.owner and g.kind == DeliveryKind.CUSTOMER_GROUP.value:
            by_owner[g.owner].append(g.name)
    if not by_owner:
        return None
    asked = sum(int(v) for k, v in record.items() if k.endswith(":asked"))
    in_time = sum(int(v) for k, v in record.items() if k.endswith(":in_time"))
    overall = in_time / asked if asked >= MIN_GLOBAL else None
    shares: list[float] = []
    late: list[tuple[str, int, int, tuple[str, ...]]] = []
    with_history = 0
    for owner, names_ in sorted(by_owner.items()):
        n = int(record.get(f"{owner}:asked", 0))
        ok = int(record.get(f"{owner}:in_time", 0))
        if n:
            with_history += 1
            shares.append(ok / n)
            if ok / n < LIKELY_LATE:
                late.append((names.get(owner, owner), ok, n, tuple(sorted(names_))))
        elif overall is not None:
            shares.append(overall)
    expected = sum(shares) / len(shares) if shares and (overall is not None or with_history) \
        else None
    return OwnerOutlook(expected, with_history, asked, in_time, tuple(late))


def fmt_duration(seconds: float) -> str:
    """`75` -> `1 分 15 秒`; `3600` -> `60 分钟`."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} 秒"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} 分钟" if rest == 0 else f"{minutes} 分 {rest} 秒"


def history_share(delays: Sequence[float], within: float) -> tuple[float | None, float | None]:
    """(share of past confirmation delays ≤ `within`, their 90th percentile), None without data."""
    if len(delays) < 20:
        return None, None
    ordered = sorted(delays)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return sum(1 for x in ordered if x <= within) / len(ordered), p90


def count_by(groups: Sequence[PlannedGroup], depth: int) -> dict[str, int]:
    """Groups per ancestor at `depth` of their path (1: county below the city root)."""
    out: dict[str, int] = defaultdict(int)
    for g in groups:
        out[g.path[min(depth, len(g.path) - 1)] if g.path else g.node] += 1
    return dict(out)
