"""The simulated corp's whole state and the operations several APIs share.

Handlers are synchronous functions over this state, so each request applies atomically
between awaits, as WeCom's own back end would.
"""

from __future__ import annotations

import itertools

from bot.clock import Clock
from bot.wecom.simulator.chaos import Faults, Holds, Latency
from bot.wecom.simulator.config import SimConfig
from bot.wecom.simulator.groups import Directory, GroupTable
from bot.wecom.simulator.kf import KfState
from bot.wecom.simulator.media import MediaStore
from bot.wecom.simulator.owners import Owners
from bot.wecom.simulator.records import Channel, Delivery, Drop, Records
from bot.wecom.simulator.tasks import (
    RESULT_NOT_MEMBER,
    RESULT_QUOTA,
    RESULT_SENT,
    SENT,
    Task,
    TaskStore,
)
from bot.wecom.simulator.timers import Timers
from bot.wecom.simulator.tokens import TokenStore
from bot.wecom.simulator.windows import Limiter


class SimState:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.clock: Clock = config.clock
        self.records = Records()
        self.directory = Directory()
        self.groups = GroupTable()
        self.tasks = TaskStore()
        self.timers = Timers(config.clock)
        self.tokens = TokenStore(config.corp_id, config.secret, config.token_ttl)
        self.owners = Owners(
            config.owner_profile, config.seed, self.directory, self.timers, self.confirm
        )
        self.latency = Latency(config.latency, config.seed)
        self.faults = Faults(config.faults, config.seed)
        self.holds = Holds()
        self.api_limits = Limiter(
            config.api_calls_per_minute,
            config.api_calls_per_hour,
            config.block_seconds_minute,
            config.block_seconds_hour,
        )
        self.appchat_limit = Limiter(
            config.appchat_person_times_per_minute, config.appchat_person_times_per_hour
        )
        self.robot_limit = Limiter(config.robot_messages_per_minute)
        self.member_limit = Limiter(
            config.member_app_messages_per_minute, config.member_app_messages_per_hour
        )
        self.kf = KfState()
        self.media = MediaStore()
        # sync_msg without the callback's token is strictly limited (§1.5; figure UNCONFIRMED)
        self.kf_untokened = Limiter(config.kf_sync_untokened_per_minute)
        self.recent_app_messages: dict[tuple[str, str, str], float] = {}  # duplicate check
        self._ids = itertools.count(1)

    def now(self) -> float:
        return self.clock.now()

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{self.config.seed:04d}{next(self._ids):010d}"

    def deliver(
        self, channel: Channel, target: str, content: str, ref: str, msgtype: str = "text"
    ) -> None:
        self.records.deliver(Delivery(channel, target, content, self.now(), ref, msgtype))

    def drop(self, channel: Channel, target: str, content: str, reason: str, ref: str) -> None:
        self.records.drop(Drop(channel, target, content, self.now(), reason, ref))

    def confirm(self, task: Task, at: float) -> None:
        """The owner pressed 发送: every chat of the task gets the message or a failure status."""
        task.status, task.send_time = SENT, at
        task.note("confirmed", at)
        self.owners.closed(task)
        for chat_id in task.chat_ids:
            task.results[chat_id] = (self._send_to_chat(task, chat_id, at), at)

    def _send_to_chat(self, task: Task, chat_id: str, at: float) -> int:
        group = self.groups.get(chat_id)
        if group is None:
            self.drop("customer_group", chat_id, task.text, "dismissed", task.msgid)
            return RESULT_NOT_MEMBER
        if not group.has_quota(at, self.config.monthly_quota):
            self.drop("customer_group", chat_id, task.text, "quota", task.msgid)
            return RESULT_QUOTA
        group.count_receipt(at)
        self.records.deliver(Delivery("customer_group", chat_id, task.text, at, task.msgid))
        return RESULT_SENT
