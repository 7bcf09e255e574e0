"""Customer-group tasks after creation: the owner is told, reminded, and WeCom is polled.

owner_msg the 1:1 app message asking the owner to confirm (sent right after the task; this
          job only retries it). WeCom's duplicate check makes a repeat harmless.
poll      get_groupmsg_task within the reserved polling budget; once confirmed,
          get_groupmsg_send_result settles every group with WeCom's own send_time.
remind    a fresh poll, then remind_groupmsg_send and a 1:1 reminder to the owner.
Escalation and the deadline report call still_waiting() first, so nobody is named for a
task confirmed since the last poll.
"""

from __future__ import annotations

import asyncio

from bot.wecom.errors import (
    AmbiguousError,
    RateLimitedError,
    TransientError,
    WeComAPIError,
    WeComError,
)
from bot.wecom.models import GroupMsgSendResult
from broadcasts import content, outbox
from broadcasts.deps import Runtime
from broadcasts.jobs_common import Result, check_settled, log, rate_gate, retry_delay
from broadcasts.models import Notice, PairState
from broadcasts.planner import poll_interval
from broadcasts.queue import Job
from broadcasts.state import Item, Unit, UnitChange

AWAITING = "awaiting_owner"
RESULT_STATES = {1: PairState.DELIVERED, 2: PairState.FAILED, 3: PairState.FAILED}
RESULT_DETAIL = {2: "群主已不在群或非好友，未发出", 3: "本月群发次数已用完，未发出"}
REFRESH_CONCURRENCY = 16
ESCALATION_LOOK = 5.0  # simulated seconds an escalation spends reading WeCom at most
LAST_POLL_LEAD = 5.0  # simulated seconds before the deadline of each open task's last poll
CORRECT_AFTER = 10.0  # simulated seconds: corrections learnt together go in one message
WITHDRAWN = "withdrawn"  # mark on a notice that was 撤回: its tasks are cancelled as they come


async def send_results(rt: Runtime, msgid: str, owner: str) -> list[GroupMsgSendResult]:
    """Every page of get_groupmsg_send_result for one owner's part of a task."""
    out: list[GroupMsgSendResult] = []
    cursor = ""
    while True:
        async with rt.limiter.hold(rt.costs.api("get_groupmsg_send_result")):
            page = await rt.wecom.get_groupmsg_send_result(msgid, owner, cursor=cursor)
        out += page.items
        if not page.next_cursor:
            return out
        cursor = page.next_cursor


async def owner_message(rt: Runtime, job: Job, worker: str) -> Result:
    """Job `owner_msg`: ask the owner again when the message right after the task could not
    go (rate ceiling, transient failure)."""
    notice = await rt.notice(job.notice)
    unit = await rt.state.unit(job.notice, job.ref)
    if notice is None or unit is None or unit.state != AWAITING or unit.owner_told:
        return Result.DONE
    await tell_owner(rt, notice, job, unit.owner, list(unit.chats))
    return Result.DONE


async def tell_owner(rt: Runtime, notice: Notice, job: Job, owner: str, chats: list[str]) -> None:
    """The 1:1 app message asking the owner to confirm now; retried through `job` (kind
    owner_msg) when it cannot go at once. WeCom's duplicate check makes a repeat harmless."""
    grant = await rate_gate(rt, job, rt.costs.app_message(owner))
    if grant is None:
        return
    groups = await rt.plans.groups_named(notice.id, chats)
    issuer = notice.extra.get("issuer_label") or "民警"
    try:
        async with rt.limiter.restamped(grant):
            await rt.wecom.send_text(owner, content.owner_text(notice, issuer, groups))
    except (TransientError, RateLimitedError) as error:
        delay = error.retry_after if isinstance(error, RateLimitedError) else \
            retry_delay(rt, await rt.notices.count(notice.id, f"om:{job.ref}"))
        if delay is not None:
            await rt.queue.defer([job], rt.clock.now() + delay)
        return
    except WeComError as error:
        log.warning("! bcast=%s unit=%s owner message failed: %s", notice.id, job.ref, error)
    await rt.state.transition(notice.id, [], [], PairState.AWAITING_OWNER, now=rt.clock.now(),
                              unit=UnitChange(job.ref, [AWAITING], AWAITING, set={"om": 1}))
    await rt.notices.step_done(notice.id, "owner_msg", rt.clock.now())


async def poll(rt: Runtime, job: Job, worker: str) -> Result:
    """Job `poll`: has the owner confirmed? Settle the groups, or poll again later."""
    notice = await rt.notice(job.notice)
    unit = await rt.state.unit(job.notice, job.ref)
    if notice is None or unit is None or unit.state != AWAITING:
        return Result.DONE
    if rt.clock.now() > horizon(notice):
        return Result.DONE
    grant = await rate_gate(rt, job, rt.costs.api("get_groupmsg_task"))
    if grant is None:
        return Result.DONE
    regular = next_poll(rt.clock.now(), _interval(rt, notice), notice.deadline_at,
                        horizon(notice))
    try:
        async with rt.limiter.restamped(grant):
            settled = await refresh_unit(rt, notice, unit)
    except (TransientError, RateLimitedError, AmbiguousError) as error:
        log.info("↻ bcast=%s unit=%s poll failed: %s", job.notice, job.ref, error)
        await rt.queue.defer([job], await _retry_at(rt, notice, job, regular))
        return Result.DONE
    except WeComAPIError as error:
        await _fail_awaiting(rt, notice.id, unit, f"查询群发结果失败：{error.errcode}")
        return Result.DONE
    if not settled:
        await rt.queue.defer([job], regular)
    return Result.DONE


def _interval(rt: Runtime, notice: Notice) -> float:
    return float(notice.extra.get("poll_interval") or poll_interval(0, rt.config))


def horizon(notice: Notice) -> float:
    """When the notice is settled at the latest (engine.release sets it)."""
    return float(notice.extra.get("horizon_at", "inf"))


async def _retry_at(rt: Runtime, notice: Notice, job: Job, regular: float) -> float:
    """A read that failed for a passing reason is tried again soon (`retry_delays`): a
    report or a correction may rest on it, and at the polling pace the next read could fall
    after the horizon, leaving a guessed report uncorrected. After those tries, the pace."""
    delay = retry_delay(rt, await rt.notices.count(notice.id, f"pf:{job.ref}"))
    return regular if delay is None else min(regular, rt.clock.now() + delay)


def next_poll(now: float, interval: float, deadline_at: float,
              horizon_at: float = float("inf")) -> float:
    """When to poll again: after `interval`, but never skip the last moment before the
    deadline nor before the horizon (LAST_POLL_LEAD before each): the deadline report and the
    final report then rest on a fresh read, and the poll it replaces keeps the chain inside
    the same budget."""
    for last in (deadline_at - LAST_POLL_LEAD, horizon_at - LAST_POLL_LEAD):
        if now < last < now + interval:
            return last
    return now + interval


async def refresh_unit(rt: Runtime, notice: Notice, unit: Unit) -> bool:
    """Read the task's status (the caller took the rate); settle it if confirmed. True when
    nothing of the unit is pending any more."""
    page = await rt.wecom.get_groupmsg_task(unit.msgid)
    task = next((t for t in page.items if t.userid == unit.owner), None)
    if task is None or task.status != 2:
        return False
    results = await send_results(rt, unit.msgid, unit.owner)
    return await settle_results(rt, notice, unit, results, float(task.send_time))


async def still_waiting(rt: Runtime, notice: Notice, *, wait: bool = True,
                        budget: float | None = None) -> list[Unit]:
    """Units still awaiting their owner after a fresh status read of each (before escalating
    or reporting, so nobody is named for a task confirmed since the last poll). wait=False:
    read only where the rate is free now, and for at most `budget` simulated seconds
    (an escalation must not queue behind the polls nor wait for a slow WeCom)."""
    units = [u for u in await rt.state.units(notice.id) if u.state == AWAITING]
    gate = asyncio.Semaphore(REFRESH_CONCURRENCY)

    async def fresh(unit: Unit) -> bool:
        async with gate:
            try:
                rates = rt.costs.api("get_groupmsg_task")
                grant = await rt.limiter.take(rates)
                if not grant.granted and not wait:
                    return True
                accounted = (rt.limiter.restamped(grant) if grant.granted
                             else rt.limiter.hold(rates))
                async with accounted:
                    return not await refresh_unit(rt, notice, unit)
            except WeComError:
                return True

    tasks = [asyncio.create_task(fresh(u)) for u in units]
    if not tasks:
        return []
    timeout = None if budget is None else rt.clock.real(budget)
    _, late = await asyncio.wait(tasks, timeout=timeout)
    for task in late:  # not read in time: still counted as waiting
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    return [u for u, t in zip(units, tasks, strict=True)
            if t in late or t.cancelled() or t.result()]


async def settle_results(rt: Runtime, notice: Notice, unit: Unit,
                         results: list[GroupMsgSendResult], send_time: float) -> bool:
    """Move each group to what WeCom reports; True when the whole unit is final."""
    by_chat = {r.chat_id: r for r in results}
    items, pending = [], []
    for chat in unit.chats:
        r = by_chat.get(chat)
        if r is None or r.status not in RESULT_STATES:
            pending.append(chat)
            continue
        at = float(r.send_time or send_time) if r.status == 1 else None
        items.append(Item(chat, RESULT_DETAIL.get(r.status), at, RESULT_STATES[r.status]))
    change = None if pending else UnitChange(unit.name, [AWAITING], "done",
                                             set={"cf": send_time})
    done = await rt.state.transition(notice.id, items, [PairState.AWAITING_OWNER, PairState.LATE],
                                     PairState.DELIVERED, now=rt.clock.now(), unit=change)
    if not done.unit_ok:
        return True  # another worker settled this unit first
    moved = set(done.moved)  # count each group once, however often its result is read
    await rt.quota.record_sends([c for c in moved if by_chat[c].status == 1])
    await rt.quota.mark_full([c for c in moved if by_chat[c].status == 3])
    if moved and await rt.notices.marked(notice.id, "report:deadline"):
        # learnt after the deadline report: the `correct` job checks whether it changes it
        await rt.queue.defer([Job("correct", notice.id)], rt.clock.now() + CORRECT_AFTER)
    if change is not None:
        await rt.redis.lpush(rt.keys.confirm_delays(), f"{send_time - unit.created_at:.1f}")
        await rt.redis.ltrim(rt.keys.confirm_delays(), 0, 4999)
        await check_settled(rt, notice.id, done.pending)
    return change is not None


async def _fail_awaiting(rt: Runtime, notice_id: int, unit: Unit, detail: str) -> None:
    change = UnitChange(unit.name, [AWAITING], "failed")
    done = await rt.state.transition(notice_id, [Item(c, detail) for c in unit.chats],
                                     [PairState.AWAITING_OWNER, PairState.LATE], PairState.FAILED,
                                     now=rt.clock.now(), unit=change)
    await check_settled(rt, notice_id, done.pending)


async def remind(rt: Runtime, job: Job, worker: str) -> Result:
    """Job `remind`: if the owner still has not confirmed, remind them (WeCom + 1:1)."""
    notice = await rt.notice(job.notice)
    unit = await rt.state.unit(job.notice, job.ref)
    if notice is None or unit is None or unit.state != AWAITING:
        return Result.DONE
    try:
        async with rt.limiter.hold(rt.costs.api("get_groupmsg_task")):
            settled = await refresh_unit(rt, notice, unit)
        if settled:
            return Result.DONE
        if unit.reminded < rt.config.ceilings.reminders_per_day:
            async with rt.limiter.hold(rt.costs.api("remind_groupmsg_send")):
                await rt.wecom.remind_groupmsg_send(unit.msgid)
    except (TransientError, RateLimitedError) as error:
        log.info("↻ bcast=%s unit=%s reminder failed: %s", job.notice, job.ref, error)
    except WeComError as error:
        log.warning("! bcast=%s unit=%s reminder refused: %s", job.notice, job.ref, error)
    await rt.state.transition(job.notice, [], [], PairState.AWAITING_OWNER, now=rt.clock.now(),
                              unit=UnitChange(job.ref, [AWAITING], AWAITING,
                                              set={"rem": unit.reminded + 1}))
    waited = rt.clock.now() - unit.created_at
    text = content.reminder_text(notice, waited, len(unit.chats))
    await outbox.post(rt, job.notice, f"rem:{job.ref}:{unit.reminded + 1}", unit.owner, [text],
                      "remind")
    return Result.DONE


async def cancel_task(rt: Runtime, notice: Notice, unit: Unit) -> None:
    """撤回 of a task the owner has not confirmed: cancel it (after a last look, so a group
    that just received it is counted as reached)."""
    try:
        async with rt.limiter.hold(rt.costs.api("cancel_groupmsg_send")):
            await rt.wecom.cancel_groupmsg_send(unit.msgid)
        async with rt.limiter.hold(rt.costs.api("get_groupmsg_task")):
            settled = await refresh_unit(rt, notice, unit)
        if settled:
            return
    except WeComError as error:
        log.warning("! bcast=%s unit=%s cancel failed: %s", notice.id, unit.name, error)
        return
    fresh = await rt.state.unit(notice.id, unit.name)
    chats = fresh.chats if fresh else unit.chats
    await rt.state.transition(notice.id, [Item(c, "已撤回（群主未确认发送）") for c in chats],
                              [PairState.AWAITING_OWNER, PairState.LATE], PairState.FAILED,
                              now=rt.clock.now(),
                              unit=UnitChange(unit.name, [AWAITING], "cancelled"))
