"""Opening and closing matters at their due times, in whichever process gets there first.

Due transitions sit in one sorted set (`DelibKeys.due`, member `open:<id>` / `close:<id>`,
score = simulated epoch). The interval job `deliberation:tick` (bot.scheduler: one process
per run) takes what is due, applies each transition — a compare-and-set on the matter's
status, so a transition happens once however often it is tried — and only then removes it
from the set: a process dying in between leaves it to the next tick. Voting checks the closing
time itself, so a late tick never lets a late ballot in.
"""

from __future__ import annotations

import logging

from bot import appkeys
from bot.scheduler import Scheduler, current_app
from deliberation.deps import DelibDeps
from deliberation.models import Status
from deliberation.service import MatterService

log = logging.getLogger(__name__)
TICK_JOB = "deliberation:tick"
TICK_SECONDS = 60.0  # simulated


def schedule_tick(scheduler: Scheduler) -> None:
    scheduler.add_interval_job(TICK_JOB, TICK_SECONDS, "deliberation.jobs:tick")


async def run_due(deps: DelibDeps) -> int:
    """Apply every due transition; returns how many were applied here."""
    service, applied = MatterService(deps), 0
    for member in await deps.matters.due_now(deps.now()):
        what, _, matter_id = member.partition(":")
        try:
            if what == "open":
                applied += await service.start(matter_id)
            elif what == "close":
                applied += await _close(deps, service, matter_id)
        except Exception:  # one broken matter must not stop the others; retried next tick
            log.exception("议题到期处理失败 %s", member)
            continue
        await deps.matters.due_done(member)
    return applied


async def _close(deps: DelibDeps, service: MatterService, matter_id: str) -> int:
    matter = await deps.matters.get(matter_id)
    if matter is None:
        return 0
    if matter.status is Status.SCHEDULED:
        await deps.matters.transition(matter_id, Status.SCHEDULED, Status.OPEN)
    if await deps.matters.transition(matter_id, Status.OPEN, Status.CLOSED):
        await deps.record("system", "deliberation.close", "ok", target=matter_id,
                          detail="到截止时间")
        await service.finalise(matter_id, by="system")
        return 1
    await service.finalise(matter_id, by="system")  # a crash after the status change
    return 0


async def tick() -> None:
    app = current_app()
    deps = DelibDeps.build(app[appkeys.redis], app[appkeys.keys], app[appkeys.clock],
                           app[appkeys.settings], app[appkeys.registry], app[appkeys.audit],
                           app[appkeys.wecom])
    await run_due(deps)
