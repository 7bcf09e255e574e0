"""What each WeCom call spends against the ceilings (wecom.md §1–§2), as limiter Rates.

Per corp and API: `api_calls_per_minute` and `api_calls_per_hour`. appchat/send also spends
person-times (the group's member count) per minute and hour; a robot allows 20 messages a
minute; one member receives at most `member_app_messages_per_minute` app messages. Polling
(task and send-result reads) additionally spends from a reserved share of the per-minute
ceiling, so status polls of all running notices together never crowd out sends.
"""

from __future__ import annotations

from bot.clock import Clock
from bot.settings import BroadcastSettings, CeilingSettings
from broadcasts.limiter import Rate

MINUTE = 60.0
HOUR = 3600.0
POLL_APIS = frozenset({"get_groupmsg_task", "get_groupmsg_send_result"})


def limiter_guard(clock: Clock) -> float:
    """Simulated seconds added to every window: ≥ 1 s, and ≥ 0.3 s of real jitter when sped up."""
    return max(1.0, 0.3 * clock.speed)


class Costs:
    """Builds the Rates of each call from the configured ceilings."""

    def __init__(self, settings: BroadcastSettings) -> None:
        self._c: CeilingSettings = settings.ceilings
        self._poll_share = settings.poll_budget_share

    def api(self, api: str) -> list[Rate]:
        """The per-API ceilings every authenticated call spends from."""
        c = self._c
        rates = [Rate(f"api:{api}:m", c.api_calls_per_minute, MINUTE),
                 Rate(f"api:{api}:h", c.api_calls_per_hour, HOUR)]
        if api in POLL_APIS:
            rates.append(Rate("poll:m", self.poll_budget_per_minute, MINUTE))
        return rates

    @property
    def poll_budget_per_minute(self) -> int:
        return max(1, int(self._c.api_calls_per_minute * self._poll_share))

    def webhook(self, key: str) -> list[Rate]:
        """One robot message (the robot's own 20/min; the corp-wide cap is unconfirmed)."""
        return [Rate(f"robot:{key}", self._c.robot_messages_per_minute, MINUTE),
                *self.api("webhook_send")]

    def appchat(self, members: int) -> list[Rate]:
        """One appchat message: an API call plus `members` person-times."""
        c, cost = self._c, max(1, members)
        return [*self.api("appchat_send"),
                Rate("appchat:pt:m", c.appchat_person_times_per_minute, MINUTE, cost),
                Rate("appchat:pt:h", c.appchat_person_times_per_hour, HOUR, cost)]

    def app_message(self, userid: str) -> list[Rate]:
        """One 1:1 app message to a member (message/send)."""
        return [Rate(f"member:{userid}", self._c.member_app_messages_per_minute, MINUTE),
                *self.api("message_send")]
