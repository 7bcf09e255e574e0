"""Scheduled jobs shared by every gridbot process: each run fires in exactly one process.

APScheduler 3.x `AsyncIOScheduler` with a Redis job store (a sync client on the same Redis,
keys `Keys.scheduler_jobs()` / `Keys.scheduler_runs()`). Every process runs a scheduler over
the same store; `get_due_jobs` returns only the runs this process claimed with
`SET Keys.scheduler_fired(job_id, run_time) NX`, so however many processes run, one fires
each run. The jobs and run-times keys share the `{sched}` hash tag, so the store's MULTI also
runs on Redis Cluster. Schedulers wake at least every second (real time), so a job added by
another process is seen promptly. A process that dies while a job runs loses that run
(at-most-once): put work that must survive a crash into a durable stream and let the job only
enqueue it.

Usage (broadcast / collection packages)::

    # a job function: importable, `async def`, keyword arguments only (picklable, JSON-like)
    async def check_deadline(*, notice_id: str) -> None:
        app = current_app()                      # the running app of this process
        wecom = app[appkeys.wecom]               # any web.AppKey, incl. your own
        await wecom.send_text(officer, "…")

    scheduler = app[appkeys.scheduler]
    scheduler.add_date_job(f"notice:{nid}:deadline", clock.now() + 600,
                           "broadcasts.jobs:check_deadline", {"notice_id": nid})
    scheduler.add_interval_job("collect:reminders", 24 * 3600, "collect.jobs:remind")
    scheduler.remove_job(f"notice:{nid}:deadline")

Times are simulated (bot.clock.Clock): `run_at` is a simulated epoch and `every` simulated
seconds; they are converted to real time for APScheduler, so a faster clock fires sooner.
Adding a job with an existing id replaces it (idempotent across processes).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from aiohttp import web
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.redis import RedisJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import datetime_to_utc_timestamp
from redis.backoff import NoBackoff
from redis.retry import Retry

from bot.clock import Clock
from bot.health import LoopGaveUpError, LoopHealth
from bot.keys import Keys
from bot.redis import connect_sync, is_cluster_url

log = logging.getLogger(__name__)

WAKE_MAX_SECONDS = 1.0  # see jobs added by other processes within a second
WAKE_MIN_SECONDS = 0.05  # a run claimed elsewhere stays due until its owner updates it
FIRED_TTL_MS = 2 * 86400 * 1000
STUCK_SECONDS = 60.0  # a claimed run still due after this: its owner died mid-update


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a running job may use: the app of this process (None outside an app)."""

    scheduler: Scheduler
    app: web.Application | None


_current: contextvars.ContextVar[JobContext] = contextvars.ContextVar("gridbot_job")


def job_context() -> JobContext:
    """The context of the job being run; RuntimeError outside a scheduled job."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("job_context() 只能在定时任务中调用") from None


def current_app() -> web.Application:
    """The running app of the process that fired this job."""
    app = job_context().app
    if app is None:
        raise RuntimeError("该调度器未绑定应用")
    return app


class ClaimingRedisJobStore(RedisJobStore):  # type: ignore[misc]  # apscheduler is untyped
    """RedisJobStore whose due jobs are only the runs this process claimed."""

    def __init__(self, url: str, keys: Keys, health: LoopHealth) -> None:
        super().__init__(jobs_key=keys.scheduler_jobs(), run_times_key=keys.scheduler_runs())
        # no retries inside a call: this client is synchronous, and retrying while Redis is
        # away would block the event loop; the scheduler tries again on its next wake-up
        quick: dict[str, Any] = {} if is_cluster_url(url) else {"retry": Retry(NoBackoff(), 0)}
        self.redis = connect_sync(url, socket_timeout=5, socket_connect_timeout=2, **quick)
        self._keys = keys
        self._owner = secrets.token_hex(6)
        self.health = health
        if not is_cluster_url(url):
            self._move_legacy_keys()

    def _move_legacy_keys(self) -> None:
        """Jobs stored under the untagged keys of earlier versions move to the tagged ones."""
        for old, new in zip(self._keys.scheduler_legacy(),
                            (self.jobs_key, self.run_times_key), strict=True):
            with contextlib.suppress(redis.ResponseError):  # no such key: nothing to move
                self.redis.renamenx(old, new)

    def shutdown(self) -> None:
        """Close the client (a cluster client has no single connection pool)."""
        self.redis.close()

    def get_due_jobs(self, now: datetime) -> list[Any]:
        """Due jobs whose current run this process claimed first."""
        try:
            due = super().get_due_jobs(now)
            claimed = [job for job in due if self._claim(job, now)]
        except redis.RedisError as error:
            try:
                self.health.failing(error)
            except LoopGaveUpError:
                log.error("定时任务调度器无法恢复：%s", type(error).__name__)
            raise  # APScheduler logs it and tries again after jobstore_retry_interval
        self.health.ok()
        return claimed

    def _claim(self, job: Any, now: datetime) -> bool:
        run_at = datetime_to_utc_timestamp(job.next_run_time)
        fired = self._keys.scheduler_fired(job.id, run_at)
        if self.redis.set(fired, self._owner, nx=True, px=FIRED_TTL_MS):
            return True
        if datetime_to_utc_timestamp(now) - run_at > STUCK_SECONDS:
            self._advance(job, now)
        return False

    def _advance(self, job: Any, now: datetime) -> None:
        """Move a run whose owner died past this run time, without firing it again."""
        log.warning("定时任务 %s 的上次运行未完成登记，跳过该次", job.id)
        following = job.trigger.get_next_fire_time(job.next_run_time, now)
        if following is None:
            self.remove_job(job.id)
        else:
            job._modify(next_run_time=following)
            self.update_job(job)

    def delete(self, job_id: str) -> bool:
        """Remove a job; False when no process had it (anymore)."""
        with self.redis.pipeline() as pipe:
            pipe.hdel(self.jobs_key, job_id)
            pipe.zrem(self.run_times_key, job_id)
            removed, _ = pipe.execute()
        return bool(removed)

    def remove_job(self, job_id: str) -> None:
        """Remove, tolerating a job another process already removed."""
        with contextlib.suppress(JobLookupError):
            super().remove_job(job_id)

    def update_job(self, job: Any) -> None:
        """Update, but never resurrect a job another process removed."""
        with contextlib.suppress(JobLookupError):
            super().update_job(job)


class _JobExecutor(AsyncIOExecutor):  # type: ignore[misc]
    """Runs each job with job_context() bound to its scheduler."""

    def __init__(self, context: JobContext) -> None:
        super().__init__()
        self._context = context

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        ctx = contextvars.copy_context()
        ctx.run(_current.set, self._context)
        # the job's task is created inside ctx, so it inherits the bound JobContext
        ctx.run(super()._do_submit_job, job, run_times)


class _PollingScheduler(AsyncIOScheduler):  # type: ignore[misc]
    """Wakes at least every WAKE_MAX_SECONDS: other processes add jobs behind its back."""

    def _start_timer(self, wait_seconds: float | None) -> None:
        if self.state == STATE_STOPPED:
            return
        wait = WAKE_MAX_SECONDS if wait_seconds is None else wait_seconds
        super()._start_timer(min(max(wait, WAKE_MIN_SECONDS), WAKE_MAX_SECONDS))

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:
            return None
        wait: float | None = super()._process_jobs()
        return wait


class Scheduler:
    """Add, replace and remove jobs shared by all processes; see the module docstring."""

    def __init__(self, redis_url: str, keys: Keys, clock: Clock, *,
                 app: web.Application | None = None, health: LoopHealth | None = None) -> None:
        self._clock = clock
        self.health = health or LoopHealth("scheduler", 300.0)
        self.store = ClaimingRedisJobStore(redis_url, keys, self.health)
        self._impl = _PollingScheduler(
            jobstore_retry_interval=WAKE_MAX_SECONDS,
            jobstores={"default": self.store},
            executors={"default": _JobExecutor(JobContext(self, app))},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone=UTC,
        )

    def start(self, *, paused: bool = False) -> None:
        """Start; call inside the running event loop. Jobs added before start() stay in this
        process's memory until then, so add-only processes (CLI) start with paused=True."""
        self._impl.start(paused=paused)
        if not paused:
            self.health.started()

    def shutdown(self) -> None:
        """Stop firing jobs (running jobs are cancelled); the stored jobs stay."""
        self.health.stopped()
        if self._impl.running:
            self._impl.shutdown(wait=False)

    def add_date_job(self, job_id: str, run_at: float, func: str,
                     kwargs: Mapping[str, Any] | None = None) -> None:
        """Run `func` ("module:function") once at simulated epoch `run_at`."""
        trigger = DateTrigger(run_date=self._real_datetime(run_at), timezone=UTC)
        self._add(job_id, trigger, func, kwargs)

    def add_interval_job(self, job_id: str, every: float, func: str,
                         kwargs: Mapping[str, Any] | None = None, *,
                         start_at: float | None = None) -> None:
        """Run `func` every `every` simulated seconds, first at `start_at` (default: now+every)."""
        first = start_at if start_at is not None else self._clock.now() + every
        trigger = IntervalTrigger(seconds=self._clock.real(every),
                                  start_date=self._real_datetime(first), timezone=UTC)
        self._add(job_id, trigger, func, kwargs)

    def remove_job(self, job_id: str) -> bool:
        """Remove a job (whoever added it); False when there was none."""
        return self.store.delete(job_id)

    def job_ids(self) -> list[str]:
        """Ids of every stored job (all processes')."""
        return [job.id for job in self._impl.get_jobs()]

    def next_run(self, job_id: str) -> float | None:
        """Simulated epoch of the job's next run, or None."""
        job = self._impl.get_job(job_id)
        if job is None or job.next_run_time is None:
            return None
        real: float = datetime_to_utc_timestamp(job.next_run_time)
        return self._clock.origin + (real - self._clock.origin) * self._clock.speed

    def _add(self, job_id: str, trigger: Any, func: str, kwargs: Mapping[str, Any] | None
             ) -> None:
        self._impl.add_job(func, trigger=trigger, id=job_id, kwargs=dict(kwargs or {}),
                           replace_existing=True, name=job_id)

    def _real_datetime(self, sim_epoch: float) -> datetime:
        return datetime.fromtimestamp(self._clock.real_epoch(sim_epoch), tz=UTC)
