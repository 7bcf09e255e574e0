"""Customer groups (客户群): one mass-send task per owner, which the owner must confirm.

task      claim the owner's unit → add_msg_template → awaiting_owner; then at once the 1:1
          message to the owner, and the first status poll and the reminder are scheduled
          (tracking.py).
reconcile a unit left `submitted` (worker died, or the answer was lost): find the task
          WeCom may have created with get_groupmsg_list_v2 + get_groupmsg_send_result; create
          it again only when two looks, some seconds apart, found none, and no request of
          the claim can still come (in_flight_until: a claim's lease, then the client's
          timeouts; a worker whose claim took longer than its lease gives it up unsent).
"""

from __future__ import annotations

import time

from bot.wecom.errors import (
    AmbiguousError,
    RateLimitedError,
    TransientError,
    WeComAPIError,
    WeComError,
)
from broadcasts import content
from broadcasts.deps import Runtime
from broadcasts.jobs_common import (
    Result,
    check_settled,
    held_here,
    log,
    rate_gate,
    retry_delay,
    worker_alive,
)
from broadcasts.models import Notice, PairState
from broadcasts.queue import Job
from broadcasts.state import Item, NotReplicatedError, Unit, UnitChange
from broadcasts.tracking import (
    AWAITING,
    WITHDRAWN,
    cancel_task,
    horizon,
    next_poll,
    send_results,
    tell_owner,
)

RECONCILE_LOOKS = 2
RECONCILE_GAP = 10.0  # simulated seconds between looks for a task WeCom may still be creating
# Real seconds a claim may take before its worker gives it up unsent. A worker can look dead
# while it is only held up (its liveness key expired during a Redis failover); a unit it
# claimed is then reconciled by another, which must not call it "never created" while its
# request may still come: not before this lease and the request's own timeouts have passed.
CLAIM_LEASE_REAL = 2.0


async def create_task(rt: Runtime, job: Job, worker: str) -> Result:
    """Job `task`: create the owner's mass-send task for their groups of this notice."""
    notice = await rt.notice(job.notice)
    unit = await rt.state.unit(job.notice, job.ref)
    if notice is None or unit is None:
        return Result.DONE
    if unit.state == "submitted":
        return await _submitted(rt, job, unit, worker)
    if unit.state != "planned":
        return Result.DONE
    chats = await _sendable(rt, notice, unit, job)
    grant = None if chats is None else \
        await rate_gate(rt, job, rt.costs.api("add_msg_template"))
    if chats is None or grant is None:
        return Result.DONE
    claim = _UnitClaim(rt, job, worker, chats)
    try:
        async with rt.limiter.restamped(grant):
            result = await rt.wecom.add_msg_template(
                unit.owner, chats, content.resident_text(notice, for_task=True),
                content.attachments(notice), before_send=claim)
    except _NotClaimedError:
        return Result.DONE
    except NotReplicatedError:
        log.warning("↻ bcast=%s unit=%s claim not on a replica yet: held", job.notice, job.ref)
        await rt.queue.defer([job], rt.clock.now() + (retry_delay(rt, 1) or 5.0))
        return Result.DONE
    except (TransientError, RateLimitedError) as error:
        if not claim.moved:  # nothing was written: the unit is still planned
            delay = error.retry_after if isinstance(error, RateLimitedError) else 5.0
            await rt.queue.defer([job], rt.clock.now() + delay)
            return Result.DONE
        await _retry_unit(rt, job, unit, worker, error)
    except AmbiguousError as error:
        log.warning("? bcast=%s unit=%s answer lost, reconciling: %s", job.notice, job.ref, error)
        await rt.queue.defer([Job("reconcile", job.notice, job.ref)],
                             rt.clock.now() + RECONCILE_GAP)
    except WeComAPIError as error:
        await _fail_unit(rt, job.notice, job.ref, chats, f"{error.errcode} {error.errmsg}",
                         fence=worker if claim.moved else "", claimed=claim.moved)
    else:
        await task_created(rt, notice, unit, chats, result.msgid, set(result.fail_list),
                           rt.clock.now(), fence=worker)
    return Result.DONE


class _NotClaimedError(Exception):
    """Another worker claimed the unit first: this one must not create the task."""


class _UnitClaim:
    """planned → submitted, run by the client right before the request is written (not
    before the token or a rate window is waited for), so a unit looks "in flight" only while
    it really may be: a worker held up by a Redis outage cannot have its unit reconciled as
    never created and then create it after all (issue 10: a group delivered twice)."""

    def __init__(self, rt: Runtime, job: Job, worker: str, chats: list[str]) -> None:
        self.rt, self.job, self.worker, self.chats, self.moved = rt, job, worker, chats, False

    async def __call__(self) -> None:
        now, started = self.rt.clock.now(), time.monotonic()
        change = UnitChange(self.job.ref, ["planned"], "submitted",
                            set={"w": self.worker, "st": now, "chats": list(self.chats)})
        state, items = self.rt.state, [Item(c) for c in self.chats]
        claimed = await state.transition(self.job.notice, items, [PairState.PLANNED],
                                         PairState.SUBMITTED, now=now, worker=self.worker,
                                         unit=change, durable=True)
        if not claimed.unit_ok:
            raise _NotClaimedError
        # not on a replica (a failover could lose it), or past its lease (another worker
        # may be reconciling it): take it back, send later
        if not claimed.replicated or time.monotonic() - started > CLAIM_LEASE_REAL:
            back = UnitChange(self.job.ref, ["submitted"], "planned", fence=self.worker)
            await state.transition(self.job.notice, items, [PairState.SUBMITTED],
                                   PairState.PLANNED, now=now, unit=back)
            raise NotReplicatedError
        self.moved = True


async def _sendable(rt: Runtime, notice: Notice, unit: Unit, job: Job) -> list[str] | None:
    """The unit's chats to send now; None when the job was deferred or nothing is left.

    A follow-up waits for the original's task of the same owner, and goes only to the groups
    the original reached (the rest are skipped)."""
    chats = list(unit.chats)
    if not notice.parent:
        return chats
    parents = await rt.state.pairs_of(notice.parent, chats)
    pending = [c for c in chats if parents.get(c) is not None and not parents[c].state.final]
    if pending and not await _parent_settled(rt, notice.parent):
        await rt.queue.defer([job], rt.clock.now() + rt.config.poll_interval_seconds)
        return None
    reached = [c for c in chats if parents.get(c) and parents[c].state is PairState.DELIVERED]
    skipped = [c for c in chats if c not in set(reached)]
    if skipped:
        await rt.state.transition(notice.id, [Item(c, "原通知未送达该群") for c in skipped],
                                  [PairState.PLANNED], PairState.SKIPPED, now=rt.clock.now())
    if not reached:
        done = await rt.state.transition(notice.id, [], [], PairState.SKIPPED,
                                         now=rt.clock.now(),
                                         unit=UnitChange(unit.name, ["planned"], "done"))
        await check_settled(rt, notice.id, done.pending)
        return None
    return reached


async def _parent_settled(rt: Runtime, parent_id: int) -> bool:
    parent = await rt.notices.get(parent_id)
    return parent is None or parent.settled_at > 0


async def task_created(rt: Runtime, notice: Notice, unit: Unit, chats: list[str], msgid: str,
                       refused: set[str], created_at: float, *, fence: str) -> None:
    """Record the task WeCom created, tell the owner, and schedule polls and the reminder."""
    items = [Item(c, "企业微信拒绝：不是该群群主或群已解散", to=PairState.FAILED) if c in refused
             else Item(c) for c in chats]
    change = UnitChange(unit.name, ["submitted"], AWAITING, fence=fence,
                        set={"msgid": msgid, "ct": created_at})
    moved = await rt.state.transition(notice.id, items, [PairState.SUBMITTED],
                                      PairState.AWAITING_OWNER, now=rt.clock.now(), unit=change)
    if not moved.unit_ok:
        return
    await rt.notices.step_done(notice.id, "task", rt.clock.now())
    if await rt.notices.marked(notice.id, WITHDRAWN):  # 撤回 came while WeCom created it
        fresh = await rt.state.unit(notice.id, unit.name)
        await cancel_task(rt, notice, fresh or unit)
        return
    interval = float(notice.extra.get("poll_interval", rt.config.poll_interval_seconds))
    await rt.queue.defer([Job("poll", notice.id, unit.name)],  # the last before the deadline
                         next_poll(created_at, interval, notice.deadline_at, horizon(notice)))
    await rt.queue.defer([Job("remind", notice.id, unit.name)],
                         created_at + rt.config.remind_after_seconds)
    if refused:
        await check_settled(rt, notice.id, moved.pending)
    accepted = [c for c in chats if c not in refused]
    if accepted:
        await tell_owner(rt, notice, Job("owner_msg", notice.id, unit.name), unit.owner, accepted)


async def _retry_unit(rt: Runtime, job: Job, unit: Unit, worker: str,
                      error: TransientError | RateLimitedError) -> None:
    counted = not isinstance(error, RateLimitedError)
    delay = error.retry_after if isinstance(error, RateLimitedError) else \
        retry_delay(rt, unit.attempts + 1)
    if delay is None:
        await _fail_unit(rt, job.notice, job.ref, list(unit.chats), f"多次重试仍失败：{error}",
                         fence=worker)
        return
    back = UnitChange(job.ref, ["submitted"], "planned", fence=worker, attempt=counted)
    moved = await rt.state.transition(job.notice, [Item(c, str(error)) for c in unit.chats],
                                      [PairState.SUBMITTED], PairState.PLANNED,
                                      now=rt.clock.now(), unit=back)
    if moved.unit_ok:
        log.info("↻ bcast=%s unit=%s retry in %.0fs: %s", job.notice, job.ref, delay, error)
        await rt.queue.defer([job], rt.clock.now() + delay)


async def _fail_unit(rt: Runtime, notice_id: int, unit: str, chats: list[str], detail: str,
                     *, fence: str, claimed: bool = True) -> None:
    """A refused task: its unit and pairs fail (from `submitted`, or from `planned` when the
    refusal came before the claim, e.g. gettoken refused)."""
    held = "submitted" if claimed else "planned"
    change = UnitChange(unit, [held], "failed", fence=fence)
    await rt.state.transition(notice_id, [Item(c, detail) for c in chats],
                              [PairState(held)], PairState.FAILED, now=rt.clock.now(),
                              unit=change)
    await check_settled(rt, notice_id)


async def _submitted(rt: Runtime, job: Job, unit: Unit, worker: str) -> Result:
    """The unit is being created by `unit.worker`: leave it, or reconcile if it died."""
    if unit.worker == worker and held_here(rt, worker, job):
        return Result.DONE
    if unit.worker != worker and await worker_alive(rt, unit.worker):
        return Result.LEAVE
    return await reconcile(rt, Job("reconcile", job.notice, job.ref), worker)


async def reconcile(rt: Runtime, job: Job, worker: str) -> Result:
    """Job `reconcile`: did WeCom create the task of a unit left `submitted`?"""
    notice = await rt.notice(job.notice)
    unit = await rt.state.unit(job.notice, job.ref)
    if notice is None or unit is None or unit.state != "submitted":
        return Result.DONE
    try:
        found = await find_task(rt, notice, unit)
    except WeComError as error:
        log.info("↻ bcast=%s unit=%s reconcile failed, again later: %s",
                 job.notice, job.ref, error)
        await rt.queue.defer([job], rt.clock.now() + RECONCILE_GAP)
        return Result.DONE
    await rt.redis.hincrby(rt.keys.stats(), "reconciled" if found else "reconcile_misses", 1)
    if found is not None:
        msgid, created_at, accepted = found
        refused = {c for c in unit.chats if c not in accepted}
        await task_created(rt, notice, unit, list(unit.chats), msgid, refused, created_at,
                           fence=unit.worker)
        return Result.DONE
    settled_by = in_flight_until(rt, unit)
    if rt.clock.now() < settled_by:  # its worker's request may still come: not yet
        await rt.queue.defer([job], max(settled_by, rt.clock.now() + RECONCILE_GAP))
        return Result.DONE
    looks = await rt.notices.count(job.notice, f"looks:{job.ref}")
    if looks < RECONCILE_LOOKS:
        await rt.queue.defer([job], rt.clock.now() + RECONCILE_GAP)
        return Result.DONE
    back = UnitChange(job.ref, ["submitted"], "planned", fence=unit.worker)
    moved = await rt.state.transition(job.notice, [Item(c) for c in unit.chats],
                                      [PairState.SUBMITTED], PairState.PLANNED,
                                      now=rt.clock.now(), unit=back)
    if moved.unit_ok:
        log.info("↻ bcast=%s unit=%s never created: creating it", job.notice, job.ref)
        await rt.queue.enqueue([Job("task", job.notice, job.ref)])
    return Result.DONE


def in_flight_until(rt: Runtime, unit: Unit) -> float:
    """Simulated time after which no request of the unit's claim can still reach WeCom: the
    claim's lease, then a connection and a request at most (the client's timeouts)."""
    wecom = rt.settings.wecom
    real = CLAIM_LEASE_REAL + wecom.connect_timeout + wecom.request_timeout + 1.0
    return unit.submitted_at + real * rt.clock.speed


async def find_task(rt: Runtime, notice: Notice, unit: Unit
                    ) -> tuple[str, float, set[str]] | None:
    """(msgid, create_time, accepted chats) of this unit's task if WeCom has it."""
    since = int((unit.submitted_at or notice.started_at) - 120)
    cursor, until = "", int(rt.clock.now() + 60)
    while True:
        async with rt.limiter.hold(rt.costs.api("get_groupmsg_list_v2")):
            page = await rt.wecom.get_groupmsg_list_v2(since, until, creator=unit.owner,
                                                       filter_type=0, cursor=cursor)
        for summary in page.items:
            if summary.creator == unit.owner and content.has_marker(summary.text, notice.id):
                results = await send_results(rt, summary.msgid, unit.owner)
                accepted = {r.chat_id for r in results}
                if accepted and accepted <= set(unit.chats):
                    return summary.msgid, float(summary.create_time), accepted
        if not page.next_cursor:
            return None
        cursor = page.next_cursor
