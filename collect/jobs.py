"""Scheduled jobs of collect/ (bot/scheduler.py): campaign reminders.

The whole scheduling of reminders is `schedule_reminders(scheduler, settings)`: one interval
job that walks every active campaign, so opening a campaign needs no scheduler access.
"""

from __future__ import annotations

from bot import appkeys
from bot.masking import scrub
from bot.scheduler import Scheduler, current_app
from bot.settings import Settings
from collect.deps import CollectDeps
from collect.reminders import remind_lagging

REMINDER_JOB = "collect:reminders"


def schedule_reminders(scheduler: Scheduler, settings: Settings) -> None:
    """(Re)register the reminder job; idempotent across processes (same job id)."""
    every = settings.collect.reminder_interval_minutes * 60
    scheduler.add_interval_job(REMINDER_JOB, every, "collect.jobs:remind_all")


async def remind_all() -> None:
    """The job: remind lagging grid workers of every active campaign."""
    app = current_app()
    deps = CollectDeps.build(app[appkeys.redis], app[appkeys.keys], app[appkeys.clock],
                             app[appkeys.settings], app[appkeys.registry], app[appkeys.audit])
    wecom = app[appkeys.wecom]

    async def send(userid: str, text: str) -> None:
        await wecom.send_text(userid, scrub(text))

    await remind_lagging(deps, send)
