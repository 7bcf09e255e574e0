"""What the simulated WeCom did: deliveries, drops, calls, errors and callback attempts.

Tests and benchmarks read these; every list is indexed where a reader looks things up.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, overload

Channel = Literal["appchat", "webhook", "customer_group", "app_message"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message that reached a group (chat_id) or a member (userid)."""

    channel: Channel
    target: str
    content: str
    at: float
    ref: str = ""  # msgid of the task / app message, or the robot key
    msgtype: str = "text"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Drop:
    """A message WeCom accepted but did not deliver (per-member ceiling, duplicate, quota …)."""

    channel: Channel
    target: str
    content: str
    at: float
    reason: str
    ref: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    api: str
    errcode: int
    at: float


@dataclass(frozen=True, slots=True)
class CallbackAttempt:
    """One POST of a callback to the bot."""

    label: str
    at: float
    status: int | None  # HTTP status, None when no answer arrived
    error: str = ""
    elapsed: float = 0.0  # real seconds

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Records(Sequence[Delivery]):
    """Append-only log with the indexes tests query; as a sequence, the deliveries in order."""

    deliveries: list[Delivery] = field(default_factory=list)
    drops: list[Drop] = field(default_factory=list)
    errors: list[ErrorAnswer] = field(default_factory=list)
    callback_attempts: list[CallbackAttempt] = field(default_factory=list)
    call_counts: Counter[str] = field(default_factory=Counter)
    fault_counts: Counter[str] = field(default_factory=Counter)
    _by_target: defaultdict[str, list[Delivery]] = field(default_factory=lambda: defaultdict(list))
    _error_counts: Counter[tuple[str, int]] = field(default_factory=Counter)

    @overload
    def __getitem__(self, index: int) -> Delivery: ...
    @overload
    def __getitem__(self, index: slice) -> list[Delivery]: ...
    def __getitem__(self, index: int | slice) -> Delivery | list[Delivery]:
        return self.deliveries[index]

    def __len__(self) -> int:
        return len(self.deliveries)

    def __iter__(self) -> Iterator[Delivery]:
        return iter(self.deliveries)

    def deliver(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        self._by_target[delivery.target].append(delivery)

    def drop(self, drop: Drop) -> None:
        self.drops.append(drop)

    def call(self, api: str) -> None:
        self.call_counts[api] += 1

    def fault(self, kind: str) -> None:
        self.fault_counts[kind] += 1

    def error(self, api: str, errcode: int, at: float) -> None:
        self.errors.append(ErrorAnswer(api, errcode, at))
        self._error_counts[(api, errcode)] += 1

    def to_target(self, target: str, channel: Channel | None = None) -> list[Delivery]:
        found = self._by_target.get(target, [])
        return [d for d in found if channel is None or d.channel == channel]

    def errors_answered(self, errcode: int, api: str | None = None) -> int:
        if api is not None:
            return self._error_counts[(api, errcode)]
        return sum(n for (_, code), n in self._error_counts.items() if code == errcode)

    def stats(self) -> dict[str, Any]:
        """Counts for /sim/stats and benchmark print-outs."""
        errors: Counter[str] = Counter()
        for (_, code), n in self._error_counts.items():
            errors[str(code)] += n
        return {
            "calls": dict(self.call_counts),
            "errors": dict(errors),
            "faults": dict(self.fault_counts),
            "deliveries": dict(Counter(d.channel for d in self.deliveries)),
            "drops": dict(Counter(d.reason for d in self.drops)),
            "callback_attempts": len(self.callback_attempts),
        }
