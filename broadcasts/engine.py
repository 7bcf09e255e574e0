"""The delivery engine: releasing a notice, its `start` job, and the job dispatch table.

A released notice is `sending`; its `start` job (run by any worker) enqueues one job per
appchat/webhook group and per owner task — groups first, as their ceilings set the machine
floor — and schedules the deadline, the escalations and the final horizon. Running `start` twice
is harmless: every job checks its pair or unit before doing anything.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from broadcasts import customer, escalation, outbox, report, sending, sweep, tracking
from broadcasts.deps import Runtime
from broadcasts.jobs_common import Result, check_settled, log
from broadcasts.models import Notice, NoticeKind, NoticeStatus, PairState
from broadcasts.plan import make_plan, plan_groups
from broadcasts.planner import poll_interval
from broadcasts.queue import Job
from broadcasts.state import Item, UnitChange

RELEASABLE = (NoticeStatus.PENDING_CONFIRM, NoticeStatus.PENDING_APPROVAL, NoticeStatus.SCHEDULED)
Handler = Callable[[Runtime, Job, str], Awaitable[Result]]


async def release(rt: Runtime, notice: Notice, at: float) -> bool:
    """Hand a confirmed (and approved, or due) notice to the workers; the SLA clock starts at
    `at`. Only one caller wins, however many try."""
    units = int(await rt.redis.hlen(rt.keys.units(notice.id)))
    deadline = float(rt.config.deadline_seconds)
    floor = float(notice.extra.get("floor", "0") or 0)
    horizon = at + max(3 * deadline, floor + 2 * deadline)
    parent = await rt.notices.get(notice.parent) if notice.parent else None
    if parent is not None:  # gated groups may only start once the original is settled
        horizon = max(horizon, float(parent.extra.get("horizon_at", "0")) + 3 * deadline)
    extra = {**notice.extra, "deadline_at": repr(at + deadline),
             "poll_interval": repr(poll_interval(units, rt.config)),
             "horizon_at": repr(horizon)}
    moved = await rt.notices.move(notice.id, RELEASABLE, NoticeStatus.SENDING,
                                  {"started_at": repr(at),
                                   "extra": json.dumps(extra, ensure_ascii=False)})
    if moved:
        await rt.queue.enqueue([Job("start", notice.id)])
        log.info("→ bcast=%s released (%d owner tasks)", notice.id, units)
    return moved


async def start(rt: Runtime, job: Job, worker: str) -> Result:
    """Job `start`: enqueue the notice's work and schedule its timers."""
    notice = await rt.notice(job.notice, fresh=True)
    if notice is None or notice.status is not NoticeStatus.SENDING:
        return Result.DONE
    if notice.kind is NoticeKind.RETRACT:
        await withdraw_parent(rt, notice)
    if notice.extra.get("replan"):
        await replan(rt, notice)
    direct, units = await rt.plans.work(notice.id)
    # appchat/webhook first: their ceilings (person-times per minute) set the machine floor,
    # so their first window must open at once; owner tasks follow a moment later. Jobs whose
    # pair or unit is no longer planned (a second `start`) end at their first check.
    await rt.queue.enqueue([Job("send", notice.id, c) for c in direct])
    await rt.queue.enqueue([Job("task", notice.id, u) for u in units])
    await _schedule_timers(rt, notice, has_units=bool(units))
    await rt.notices.step_done(notice.id, "enqueued", rt.clock.now())
    await check_settled(rt, notice.id)
    return Result.DONE


async def replan(rt: Runtime, notice: Notice) -> None:
    """A scheduled notice is planned again when it fires (the registry may have changed since
    the preview); the marker lets only the first of racing `start` jobs do it."""
    groups = await rt.registry.target_groups(notice.target.codes, tags=notice.target.tags,
                                             exclude=notice.target.exclude)
    planned = await plan_groups(rt.registry, groups, rt.config.ceilings.chat_ids_per_task)
    plan = await make_plan(rt.quota, planned, rt.clock.now())
    if await rt.plans.write(notice.id, plan, rt.clock.now(), replace=True, once="replanned"):
        log.info("→ bcast=%s re-planned: %d groups", notice.id, len(planned))


async def _schedule_timers(rt: Runtime, notice: Notice, *, has_units: bool) -> None:
    at, q, c = notice.started_at, rt.queue, rt.config
    await q.defer([Job("deadline", notice.id)], notice.deadline_at)
    await q.defer([Job("final", notice.id, "horizon")], float(notice.extra["horizon_at"]))
    await q.defer([Job("sweep", notice.id)], at + c.sweep_interval_seconds)
    if has_units:
        await q.defer([Job("escalate", notice.id, "officer")],
                      at + c.escalate_officer_after_seconds)
        await q.defer([Job("escalate", notice.id, "supervisor")],
                      at + c.escalate_supervisor_after_seconds)


async def withdraw_parent(rt: Runtime, notice: Notice) -> None:
    """撤回: what of the original has not gone out yet never will. Sends not yet started are
    stopped, owner tasks not yet confirmed are cancelled (after a last look, so a group that
    just received it still gets the retraction)."""
    parent = await rt.notice(notice.parent, fresh=True)
    if parent is None:
        return
    # marked before the units are read: a task being created right now is cancelled by
    # task_created once it exists (it sees the mark), one already created is cancelled here
    await rt.notices.mark_once(parent.id, tracking.WITHDRAWN)
    now = rt.clock.now()
    units = await rt.state.units(parent.id)
    in_units = {c for u in units for c in u.chats}
    pairs = await rt.state.pairs(parent.id)
    planned = [Item(c, "已撤回，未发送") for c, r in pairs.items()
               if r.state is PairState.PLANNED and c not in in_units]
    await rt.state.transition(parent.id, planned, [PairState.PLANNED], PairState.FAILED, now=now)
    for unit in units:
        if unit.state == "planned":
            await rt.state.transition(parent.id, [Item(c, "已撤回，未发送") for c in unit.chats],
                                      [PairState.PLANNED], PairState.FAILED, now=now,
                                      unit=UnitChange(unit.name, ["planned"], "failed"))
        elif unit.state == tracking.AWAITING:
            await tracking.cancel_task(rt, parent, unit)
    await check_settled(rt, parent.id)


HANDLERS: dict[str, Handler] = {
    "start": start,
    "send": sending.send_group,
    "task": customer.create_task,
    "reconcile": customer.reconcile,
    "owner_msg": tracking.owner_message,
    "poll": tracking.poll,
    "remind": tracking.remind,
    "escalate": escalation.escalate,
    "deadline": report.deadline,
    "final": report.final,
    "sweep": sweep.sweep,
    "tell": outbox.tell,
    "correct": report.correct,
}


async def run_job(rt: Runtime, job: Job, worker: str) -> Result:
    """Run one job; an unknown kind is dropped (logged), never retried forever."""
    handler = HANDLERS.get(job.kind)
    if handler is None:
        log.error("unknown job kind %r dropped", job.kind)
        return Result.DONE
    return await handler(rt, job, worker)
