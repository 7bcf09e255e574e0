"""Job `sweep`: finds what a Redis restart (or a lost job) left behind, while a notice sends.

Every `broadcast.sweep_interval_seconds` of a sending notice, a pair still `planned` or
`submitted` that nothing has touched for longer than the longest retry delay plus one poll
interval, and whose job is not waiting in the due set (a retry, a rate window, a follow-up
gated on its original), gets its job again:
`send` for an appchat/webhook group, `task` for an owner task. Those jobs check the record
first, so a pair in flight is left to its worker, a pair left `submitted` by a worker that
is gone is reconciled (owner tasks: read back from WeCom) or marked `uncertain` (never
resent), and a pair whose job vanished is sent. The final horizon job is deferred again
(ZADD of the same member: no duplicate), so a lost timer cannot leave a notice open. (The
deadline job is not: run again after the deadline it would message owners again, and a
message to an owner counts as a reminder.)
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from broadcasts.deps import Runtime
from broadcasts.jobs_common import Result, log
from broadcasts.models import NoticeStatus, PairState
from broadcasts.queue import Job, shard_of

OPEN = (PairState.PLANNED, PairState.SUBMITTED)


async def sweep(rt: Runtime, job: Job, worker: str) -> Result:
    """Re-enqueue the jobs of stale open pairs; re-arm the deadline and final timers."""
    notice = await rt.notice(job.notice, fresh=True)
    if notice is None or notice.status is not NoticeStatus.SENDING:
        return Result.DONE
    now, c = rt.clock.now(), rt.config
    stale_after = max(c.retry_delays, default=0.0) + c.poll_interval_seconds
    unit_of = {chat: u.name for u in await rt.state.units(notice.id) for chat in u.chats}
    sends, tasks = set(), set()
    for chat, record in (await rt.state.pairs(notice.id)).items():
        if record.state in OPEN and now - record.at > stale_after:
            if chat in unit_of:
                tasks.add(unit_of[chat])
            else:
                sends.add(chat)
    jobs = [Job("send", notice.id, c) for c in sorted(sends)]
    jobs += [Job("task", notice.id, u) for u in sorted(tasks)]
    jobs = await _not_waiting(rt, jobs)
    if jobs:
        queued = sum(job.kind == "send" for job in jobs)
        log.warning("! bcast=%s sweep: %d stale groups, %d owner tasks queued again "
                    "(%d stale in all, the rest waiting in the due set)",
                    notice.id, queued, len(jobs) - queued, len(sends) + len(tasks))
        await rt.redis.hincrby(rt.keys.stats(), "swept", len(jobs))
        await rt.queue.enqueue(jobs)
    await rt.queue.defer([Job("final", notice.id, "horizon")],
                         float(notice.extra["horizon_at"]))
    await rt.queue.defer([Job("sweep", notice.id)], now + c.sweep_interval_seconds)
    return Result.DONE


async def _not_waiting(rt: Runtime, jobs: list[Job]) -> list[Job]:
    """`jobs` less those deferred (a retry, a rate window, a follow-up waiting for its
    original): those have not vanished, leave them to their time. One ZMSCORE per shard."""
    by_shard: dict[int, list[Job]] = defaultdict(list)
    for job in jobs:
        by_shard[shard_of(job)].append(job)
    scores = await asyncio.gather(*(
        rt.redis.zmscore(rt.keys.due(shard), [job.to_json() for job in group])
        for shard, group in by_shard.items()))
    waiting = {job for group, found in zip(by_shard.values(), scores, strict=True)
               for job, score in zip(group, found, strict=True) if score is not None}
    return [job for job in jobs if job not in waiting]
