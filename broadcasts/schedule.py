"""Scheduled notices (`定时 2026-11-27 08:00 …`) through bot.scheduler.

The scheduler fires each run in one process (claimed in Redis); the fired job only releases
the notice (a compare-and-set: `scheduled` → `sending`) and its re-planning happens in the
`start` job on the durable stream, guarded by a one-shot marker. So even a second firing
could not send anything twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator

from aiohttp import web

from bot import appkeys
from bot.keys import Keys
from bot.scheduler import Scheduler, current_app
from bot.settings import Settings
from broadcasts.deps import Runtime
from broadcasts.engine import release
from broadcasts.models import NoticeStatus

log = logging.getLogger(__name__)

FIRE = "broadcasts.schedule:fire_scheduled"


def job_id(notice_id: int) -> str:
    return f"broadcast:{notice_id}"


class SchedulerGateway:
    """broadcasts.service.Scheduling on top of bot.scheduler.Scheduler."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def add(self, notice_id: int, at: float) -> None:
        self._scheduler.add_date_job(job_id(notice_id), at, FIRE, {"notice_id": notice_id})

    def remove(self, notice_id: int) -> None:
        self._scheduler.remove_job(job_id(notice_id))

    def next_run(self, notice_id: int) -> float | None:
        """Simulated time the notice is due to fire, None when not scheduled."""
        return self._scheduler.next_run(job_id(notice_id))


_bound: list[SchedulerGateway] = []


def bind_scheduler(scheduler: Scheduler | None) -> None:
    """Use this process's running scheduler for 定时 commands (the app extension calls it)."""
    _bound.clear()
    if scheduler is not None:
        _bound.append(SchedulerGateway(scheduler))


def bound_scheduling() -> SchedulerGateway | None:
    """The scheduler bound in this process, if any (None: 定时 answers that it is off)."""
    return _bound[0] if _bound else None


def runtime_from_app(app: web.Application) -> Runtime:
    """A Runtime over the services of a running bot.app application."""
    return Runtime.build(app[appkeys.settings], app[appkeys.redis], app[appkeys.keys],
                         app[appkeys.clock], app[appkeys.wecom], app[appkeys.registry],
                         app[appkeys.audit])


async def fire_scheduled(*, notice_id: int) -> None:
    """Scheduler job: release a scheduled notice (re-planned on the stream)."""
    await fire(runtime_from_app(current_app()), notice_id)


async def fire(rt: Runtime, notice_id: int) -> bool:
    """Release `notice_id` if it is still scheduled; True for the one caller that did."""
    await rt.notices.count(notice_id, "fire_attempts")
    notice = await rt.notices.get(notice_id)
    if notice is None or notice.status is not NoticeStatus.SCHEDULED:
        return False
    notice = notice.with_(extra={**notice.extra, "replan": "1"})
    await rt.notices.set_fields(notice_id, {"extra": json.dumps(notice.extra, ensure_ascii=False)})
    released = await release(rt, notice, rt.clock.now())
    if released:
        await rt.audit.record("system", "broadcast.fire", "ok", target=f"#{notice_id}",
                              detail="定时通知已发出")
        log.info("⏲ bcast=%s fired", notice_id)
    return released


@contextlib.contextmanager
def standalone_scheduling(settings: Settings, rt: Runtime) -> Iterator[SchedulerGateway]:
    """A paused scheduler that only adds/removes jobs in the shared store (CLI processes);
    call inside a running event loop."""
    scheduler = Scheduler(settings.redis.url, Keys(settings.redis.prefix), rt.clock)
    scheduler.start(paused=True)
    try:
        yield SchedulerGateway(scheduler)
    finally:
        scheduler.shutdown()
