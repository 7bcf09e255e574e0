"""The simulator's knobs: WeCom's published limits (wecom.md §1–§2), latency, faults, owners.

Every duration here is in simulated seconds and is read through the simulator's Clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from bot.clock import REAL_TIME, Clock

if TYPE_CHECKING:
    from bot.settings import Settings

Trigger = Literal["created", "reminder", "escalation", "never"]
FaultKind = Literal["-1", "5xx", "timeout"]
TimeoutMode = Literal["after_commit", "before_commit"]
FAULT_KINDS: tuple[FaultKind, ...] = ("-1", "5xx", "timeout")


@dataclass(frozen=True, slots=True)
class LatencyConfig:
    """Lognormal response latency in simulated seconds; median 0 means none."""

    median: float = 0.060
    p99: float = 0.400
    cap: float = 5.0

    @property
    def sigma(self) -> float:
        if self.median <= 0 or self.p99 <= self.median:
            return 0.0
        return math.log(self.p99 / self.median) / 2.3263478740408408  # z(0.99)

    @classmethod
    def none(cls) -> LatencyConfig:
        return cls(median=0.0, p99=0.0)


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Inject failures into `rate` of the calls to `apis` (empty: every /cgi-bin/ API).

    -1: errcode -1 (系统繁忙), not processed. 5xx: HTTP 502/503, not processed. timeout: the
    answer is held until the client gives up; `timeout_mode` says whether the request was
    processed first (after_commit: the answer is lost) or not at all (before_commit).
    """

    rate: float = 0.0
    weights: Mapping[str, float] = field(
        default_factory=lambda: {"-1": 1.0, "5xx": 1.0, "timeout": 1.0}
    )
    timeout_mode: TimeoutMode = "after_commit"
    apis: frozenset[str] = frozenset()
    seed: int | None = None  # None: the simulator's seed

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("fault rate must be within [0, 1]")
        unknown = set(self.weights) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        if self.rate and sum(self.weights.values()) <= 0:
            raise ValueError("fault weights must not all be zero")

    def applies_to(self, api: str) -> bool:
        return not self.apis or api in self.apis


@dataclass(frozen=True, slots=True)
class ConfirmClass:
    """Owners who confirm `delay` simulated seconds after `trigger` reaches them."""

    name: str
    share: float
    trigger: Trigger
    delay: tuple[float, float] = (0.0, 0.0)


DEFAULT_CLASSES = (
    ConfirmClass("prompt", 0.60, "created", (60.0, 180.0)),
    ConfirmClass("slow", 0.25, "created", (180.0, 480.0)),
    ConfirmClass("needs_reminder", 0.10, "reminder", (30.0, 120.0)),
    ConfirmClass("needs_escalation", 0.045, "escalation", (60.0, 180.0)),
    ConfirmClass("never", 0.005, "never"),
)


@dataclass(frozen=True, slots=True)
class OwnerProfile:
    """How group owners (grid workers) confirm customer-group tasks (issue 4, fixed default)."""

    classes: tuple[ConfirmClass, ...] = DEFAULT_CLASSES
    # a 1:1 app message counts as a reminder only once the task is this old
    reminder_min_age: float = 60.0

    def __post_init__(self) -> None:
        if not math.isclose(sum(c.share for c in self.classes), 1.0, abs_tol=1e-9):
            raise ValueError("owner class shares must sum to 1")

    @classmethod
    def always(cls, delay: tuple[float, float] = (1.0, 1.0)) -> OwnerProfile:
        """Every owner confirms `delay` after creation (tests, quick demos)."""
        return cls(classes=(ConfirmClass("always", 1.0, "created", delay),))


@dataclass(frozen=True, slots=True)
class SimConfig:
    """One simulated WeCom corp with one self-built app."""

    corp_id: str = "wwgridbotsim0001"
    secret: str = "gridbot-sim-secret"
    agent_id: int = 1000002
    token: str = ""  # callback Token (≤32 chars)
    encoding_aes_key: str = ""  # callback EncodingAESKey (43 chars)
    callback_url: str = ""
    clock: Clock = REAL_TIME
    seed: int = 0
    token_ttl: float = 7200.0
    api_calls_per_minute: int = 10_000
    api_calls_per_hour: int = 150_000
    block_seconds_minute: float = 60.0
    block_seconds_hour: float = 3600.0
    appchat_person_times_per_minute: int = 20_000
    appchat_person_times_per_hour: int = 150_000
    robot_messages_per_minute: int = 20
    member_app_messages_per_minute: int = 30
    member_app_messages_per_hour: int = 1000
    reminders_per_day: int = 3
    monthly_quota: int | None = None  # None: the number of days in the month (default rule)
    groupchat_list_unfiltered_max_members: int = 1000  # 81017 above this; 0 disables
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    faults: tuple[FaultConfig, ...] = ()
    owner_profile: OwnerProfile = field(default_factory=OwnerProfile)
    hang_seconds: float = 3600.0  # longest a "timeout" fault holds an answer
    callback_timeout: float = 5.0
    callback_min_real_timeout: float = 1.0  # a fast clock must not turn jitter into failures
    callback_retries: int = 3
    callback_retry_delay: float = 0.0
    kf_sync_untokened_per_minute: int = 10

    def with_(self, **changes: object) -> SimConfig:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock, **overrides: object) -> SimConfig:
        """The simulator matching the bot's own settings (same corp, secrets and ceilings)."""
        wecom, ceilings, server = settings.wecom, settings.broadcast.ceilings, settings.server
        base = cls(
            corp_id=wecom.corp_id,
            secret=wecom.secret.get_secret_value(),
            agent_id=wecom.agent_id,
            token=wecom.token.get_secret_value(),
            encoding_aes_key=wecom.encoding_aes_key.get_secret_value(),
            callback_url=f"http://{server.host}:{server.port}{settings.callback.path}",
            clock=clock,
            api_calls_per_minute=ceilings.api_calls_per_minute,
            api_calls_per_hour=ceilings.api_calls_per_hour,
            block_seconds_minute=ceilings.block_seconds_minute,
            block_seconds_hour=ceilings.block_seconds_hour,
            appchat_person_times_per_minute=ceilings.appchat_person_times_per_minute,
            appchat_person_times_per_hour=ceilings.appchat_person_times_per_hour,
            robot_messages_per_minute=ceilings.robot_messages_per_minute,
            member_app_messages_per_minute=ceilings.member_app_messages_per_minute,
            reminders_per_day=ceilings.reminders_per_day,
        )
        return base.with_(**overrides)
