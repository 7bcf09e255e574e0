"""Appchat and webhook groups: claim → send → settle, one group per job.

These channels offer no read-back: a pair found `submitted` by a worker that has since died
(or a request whose answer was lost) is marked `uncertain` and reported, never resent.
"""

from __future__ import annotations

from bot.wecom.errors import AmbiguousError, RateLimitedError, TransientError, WeComAPIError
from broadcasts.content import resident_text
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
from broadcasts.limiter import Grant
from broadcasts.models import Notice, PairRecord, PairState, PlannedGroup
from broadcasts.queue import Job
from broadcasts.state import Item, NotReplicatedError
from registry.models import DeliveryKind

DIED_IN_FLIGHT = "发送时工作进程中断，无法确认是否送达（系统不会重发，请人工核实）"


async def send_group(rt: Runtime, job: Job, worker: str) -> Result:
    """Job `send`: one appchat or webhook group of a notice."""
    notice = await rt.notice(job.notice)
    record, raw_group = await rt.state.pair_and_group(job.notice, job.ref)
    if notice is None or record is None or raw_group is None:
        return Result.DONE
    if record.state is PairState.SUBMITTED:
        return await take_over(rt, job, record, worker)
    if record.state is not PairState.PLANNED or not await parent_allows(rt, notice, job):
        return Result.DONE
    group = PlannedGroup.from_json(raw_group)
    rates = (rt.costs.webhook(group.webhook_key) if group.kind == DeliveryKind.WEBHOOK
             else rt.costs.appchat(group.members))
    grant = await rate_gate(rt, job, rates)
    if grant is None:
        return Result.DONE
    await _send_and_settle(rt, notice, group, record, job, _Claim(rt, job, worker, grant))
    return Result.DONE


class _NotClaimedError(Exception):
    """Another worker moved the pair first: this one must not send."""


class _Claim:
    """PLANNED → SUBMITTED, run by the client right before the request is written, so the
    pair looks "in flight" only while it really may be (see bot.wecom.client.Call)."""

    def __init__(self, rt: Runtime, job: Job, worker: str, grant: Grant) -> None:
        self.rt, self.job, self.worker, self.moved = rt, job, worker, False
        self.grant = grant

    async def __call__(self) -> None:
        state = self.rt.state
        claimed = await state.transition(
            self.job.notice, [Item(self.job.ref)], [PairState.PLANNED], PairState.SUBMITTED,
            now=self.rt.clock.now(), worker=self.worker, durable=True)
        if not claimed.moved:
            raise _NotClaimedError
        if not claimed.replicated:  # a failover now could lose the claim: take it back
            await state.transition(self.job.notice, [Item(self.job.ref)],
                                   [PairState.SUBMITTED], PairState.PLANNED,
                                   now=self.rt.clock.now(), fence=self.worker)
            raise NotReplicatedError
        self.moved = True


async def _send_and_settle(rt: Runtime, notice: Notice, group: PlannedGroup,
                           record: PairRecord, job: Job, claim: _Claim) -> None:
    text, markdown, worker = resident_text(notice), notice.content.markdown, claim.worker
    try:
        async with rt.limiter.restamped(claim.grant):
            if group.kind == DeliveryKind.WEBHOOK:
                await rt.wecom.webhook_send(group.webhook_key, text, markdown=markdown,
                                            before_send=claim)
            else:
                await rt.wecom.appchat_send(group.chat_id, text, markdown=markdown,
                                            before_send=claim)
    except _NotClaimedError:
        return
    except NotReplicatedError:
        log.warning("↻ bcast=%s chat=%s claim not on a replica yet: held", job.notice, job.ref)
        await rt.queue.defer([job], rt.clock.now() + (retry_delay(rt, 1) or 5.0))
        return
    except (TransientError, RateLimitedError) as error:
        if not claim.moved:  # failed before anything was written: the pair is still planned
            delay = error.retry_after if isinstance(error, RateLimitedError) else \
                retry_delay(rt, 1) or 5.0
            await rt.queue.defer([job], rt.clock.now() + delay)
            return
        await _retry_later(rt, job, record, worker, error)
        return
    except WeComAPIError as error:
        if not claim.moved:  # e.g. gettoken refused: nothing was sent
            done = await rt.state.transition(
                job.notice, [Item(job.ref, f"{error.errcode} {error.errmsg}")],
                [PairState.PLANNED], PairState.FAILED, now=rt.clock.now())
            await check_settled(rt, job.notice, done.pending)
            return
        pending = await _settle(rt, job, worker, PairState.FAILED,
                                f"{error.errcode} {error.errmsg}")
        await check_settled(rt, job.notice, pending)
        return
    except AmbiguousError as error:
        pending = await _settle(rt, job, worker, PairState.UNCERTAIN,
                                f"应答丢失，无法确认是否送达：{error}")
    else:
        now = rt.clock.now()
        pending = await _settle(rt, job, worker, PairState.DELIVERED, None, delivered_at=now)
        await rt.notices.step_done(job.notice, group.kind, now)
    await check_settled(rt, job.notice, pending)


async def _retry_later(rt: Runtime, job: Job, record: PairRecord, worker: str,
                       error: TransientError | RateLimitedError) -> None:
    if isinstance(error, RateLimitedError):
        delay: float | None = error.retry_after
        counted = False
    else:
        delay, counted = retry_delay(rt, record.attempts + 1), True
    if delay is None:
        pending = await _settle(rt, job, worker, PairState.FAILED, f"多次重试仍失败：{error}")
        await check_settled(rt, job.notice, pending)
        return
    moved = await rt.state.transition(job.notice, [Item(job.ref, detail=str(error))],
                                      [PairState.SUBMITTED], PairState.PLANNED,
                                      now=rt.clock.now(), fence=worker, attempt=counted)
    if moved.moved:
        log.info("↻ bcast=%s chat=%s retry in %.0fs: %s", job.notice, job.ref, delay, error)
        await rt.queue.defer([job], rt.clock.now() + delay)


async def _settle(rt: Runtime, job: Job, worker: str, to: PairState, detail: str | None,
                  *, delivered_at: float | None = None) -> int:
    """Settle the pair this worker holds; returns the notice's pending count."""
    done = await rt.state.transition(job.notice, [Item(job.ref, detail, delivered_at)],
                                     [PairState.SUBMITTED], to, now=rt.clock.now(), fence=worker)
    return done.pending


async def take_over(rt: Runtime, job: Job, record: PairRecord, worker: str) -> Result:
    """A pair left `submitted`: its worker is alive (leave it) or died mid-send (uncertain)."""
    if record.worker == worker and held_here(rt, worker, job):
        return Result.DONE  # another entry of this worker is sending it right now
    if record.worker != worker and await worker_alive(rt, record.worker):
        return Result.LEAVE
    moved = await rt.state.transition(job.notice, [Item(job.ref, DIED_IN_FLIGHT)],
                                      [PairState.SUBMITTED], PairState.UNCERTAIN,
                                      now=rt.clock.now(), fence=record.worker)
    if moved.moved:
        await rt.redis.hincrby(rt.keys.stats(), "uncertain", 1)
        log.warning("! bcast=%s chat=%s uncertain: worker %s died in flight",
                    job.notice, job.ref, record.worker)
        await check_settled(rt, job.notice, moved.pending)
    return Result.DONE


async def parent_allows(rt: Runtime, notice: Notice, job: Job) -> bool:
    """Follow-ups go exactly where the original went: wait while the original's pair is
    pending, skip the group if the original never reached it."""
    if not notice.parent:
        return True
    parent = await rt.state.pair(notice.parent, job.ref)
    if parent is not None and parent.state is PairState.DELIVERED:
        return True
    if parent is not None and not parent.state.final and not await _parent_over(rt, notice):
        await rt.queue.defer([job], rt.clock.now() + rt.config.poll_interval_seconds)
        return False
    skipped = await rt.state.transition(job.notice, [Item(job.ref, "原通知未送达该群")],
                                        [PairState.PLANNED], PairState.SKIPPED, now=rt.clock.now())
    await check_settled(rt, job.notice, skipped.pending)
    return False


async def _parent_over(rt: Runtime, notice: Notice) -> bool:
    parent = await rt.notices.get(notice.parent)
    return parent is None or parent.settled_at > 0
