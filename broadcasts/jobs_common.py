"""Pieces every job handler shares: the result of a job, rate gating, retries, fences."""

from __future__ import annotations

import logging
from enum import Enum

from broadcasts.deps import Runtime
from broadcasts.limiter import Grant, Rate
from broadcasts.models import PENDING_STATES, PairState
from broadcasts.queue import Job

log = logging.getLogger("broadcasts")

# waits up to this long (simulated seconds) are slept in place; longer ones defer the job, so
# a worker's slots are not held by jobs waiting for the next window
SHORT_WAIT = 2.0


class Result(Enum):
    DONE = "done"  # acknowledge the entry
    LEAVE = "leave"  # a live worker still holds the record: leave the entry pending


async def rate_gate(rt: Runtime, job: Job, rates: list[Rate]) -> Grant | None:
    """Take `rates` now (the grant: make the call inside `rt.limiter.restamped(grant)`), or
    defer `job` until they can be taken (None)."""
    while True:
        grant = await rt.limiter.take(rates)
        if grant.granted:
            return grant
        if grant.wait > SHORT_WAIT:
            await rt.queue.defer([job], rt.clock.now() + grant.wait)
            return None
        await rt.clock.sleep(grant.wait)


def retry_delay(rt: Runtime, failures: int) -> float | None:
    """Delay before retry number `failures` (5 s, 30 s, 2 min …), None when spent."""
    delays = rt.config.retry_delays
    return delays[failures - 1] if 0 < failures <= len(delays) else None


def running(rt: Runtime, worker: str, job: Job, delta: int) -> None:
    """Count a job of `worker` in (+1) or out (-1) of the jobs this Runtime is running now."""
    key = (worker, job.notice, job.ref)
    count = rt.running_jobs.get(key, 0) + delta
    if count > 0:
        rt.running_jobs[key] = count
    else:
        rt.running_jobs.pop(key, None)


def held_here(rt: Runtime, worker: str, job: Job) -> bool:
    """Whether another job of `worker` on the same pair/unit runs here (the caller, itself
    counted in, is not enough). A record held by this very worker is only "being sent right
    now" if one of them is it: after a Redis outage cost a job its settle, the record still
    names this worker although nothing is in flight any more."""
    return rt.running_jobs.get((worker, job.notice, job.ref), 0) > 1


async def worker_alive(rt: Runtime, worker: str) -> bool:
    return bool(worker) and bool(await rt.redis.exists(rt.keys.worker_alive(worker)))


async def check_settled(rt: Runtime, notice_id: int, pending: int = -1) -> None:
    """Enqueue the final report once no pair of the notice is pending any more (`pending`
    as a transition reported it; -1: read the counts)."""
    if pending < 0:
        pending = pending_left(await rt.state.counts(notice_id))
    if pending == 0:
        await rt.queue.enqueue([Job("final", notice_id)])


def pending_left(counts: dict[PairState, int]) -> int:
    return sum(counts.get(s, 0) for s in PENDING_STATES)
