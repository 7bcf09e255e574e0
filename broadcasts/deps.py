"""The services one broadcast process uses, built once (serve, worker, CLI, tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis.asyncio as aioredis

from bot.audit import AuditLog
from bot.clock import Clock
from bot.keys import Keys
from bot.settings import BroadcastSettings, Settings
from bot.wecom.client import WeComClient
from broadcasts.apikeys import ApiKeys
from broadcasts.costs import Costs, limiter_guard
from broadcasts.keys import BroadcastKeys
from broadcasts.limiter import RateLimiter
from broadcasts.models import Notice
from broadcasts.notices import NoticeStore
from broadcasts.plan import PlanStore
from broadcasts.queue import JobQueue
from broadcasts.quota import QuotaBook
from broadcasts.state import StateStore
from registry.store import Registry


@dataclass
class Runtime:
    """Everything job handlers and commands need; cheap to build, holds no broadcast state
    (only a cache of notices, whose sent content never changes, and the count of the jobs its
    workers run now: per Runtime, not per process, because notice ids and default worker
    names repeat across the Redis servers one process may talk to, tests included)."""

    settings: Settings
    redis: aioredis.Redis
    keys: BroadcastKeys
    clock: Clock
    wecom: WeComClient
    registry: Registry
    audit: AuditLog
    notices: NoticeStore
    state: StateStore
    plans: PlanStore
    queue: JobQueue
    limiter: RateLimiter
    costs: Costs
    quota: QuotaBook
    _content: dict[int, Notice] = field(default_factory=dict)
    running_jobs: dict[tuple[str, int, str], int] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, redis: aioredis.Redis, keys: Keys, clock: Clock,
              wecom: WeComClient, registry: Registry, audit: AuditLog) -> Runtime:
        bkeys = BroadcastKeys(keys)
        return cls(
            settings=settings, redis=redis, keys=bkeys, clock=clock, wecom=wecom,
            registry=registry, audit=audit, notices=NoticeStore(redis, bkeys, clock),
            state=StateStore(redis, bkeys, wait_replicas=settings.redis.wait_replicas,
                             wait_timeout_ms=settings.redis.wait_timeout_ms),
            plans=PlanStore(redis, bkeys),
            queue=JobQueue(redis, bkeys, clock),
            limiter=RateLimiter(redis, bkeys, clock, guard=limiter_guard(clock)),
            costs=Costs(settings.broadcast), quota=QuotaBook(redis, bkeys, clock),
        )

    @property
    def config(self) -> BroadcastSettings:
        return self.settings.broadcast

    @property
    def api_keys(self) -> ApiKeys:
        """The HTTP API's keys, with the lifetimes of settings."""
        return ApiKeys(self.redis, self.keys, self.clock, default_days=self.config.api_key_days,
                       max_days=self.config.api_key_max_days)

    async def notice(self, notice_id: int, *, fresh: bool = False) -> Notice | None:
        """The notice; once released its content and timings never change, so released notices
        are cached (the status field needs `fresh=True`)."""
        if not fresh and notice_id in self._content:
            return self._content[notice_id]
        notice = await self.notices.get(notice_id)
        if notice is not None and notice.started_at:
            if len(self._content) > 256:
                self._content.clear()
            self._content[notice_id] = notice
        return notice
