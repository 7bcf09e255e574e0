"""Every message to a person is a durable job: escalations, reminders, approval requests,
corrections (the reports themselves go through report.tell).

post() writes the message under the notice's hash tag (once: its id is chosen by the caller,
so a job that runs twice posts it once) and enqueues a `tell` job. The job sends it with
WeCom's duplicate check on (message/send), records every attempt, retries a passing failure
(HTTP 5xx, -1, a lost answer, the per-member ceiling) after `broadcast.retry_delays`, and
marks the message failed when the delays are spent or WeCom refuses for good; failed()
lists those for the officer's final report. Nothing waits in a process's memory: a restart
leaves the job in the queue and the record in Redis.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.rtypes import smap
from bot.wecom.errors import AmbiguousError, RateLimitedError, TransientError, WeComError
from broadcasts.deps import Runtime
from broadcasts.jobs_common import Result, log, rate_gate, retry_delay
from broadcasts.queue import Job

PENDING, SENT, FAILED = "pending", "sent", "failed"
PURPOSES = {"escalate_officer": "催办", "escalate_supervisor": "督办", "remind": "提醒群主",
            "approve": "请求批准", "correct": "更正", "approval_asked": "批准请求告知"}


@dataclass(slots=True)
class OutMessage:
    """One message to one person and what became of it."""

    to: str
    text: str
    purpose: str
    state: str = PENDING
    attempts: list[dict[str, Any]] = field(default_factory=list)  # {"at", "result"}

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> OutMessage:
        data = json.loads(raw)
        return cls(str(data["to"]), str(data["text"]), str(data["purpose"]),
                   str(data.get("state", PENDING)), list(data.get("attempts") or []))

    @property
    def last_error(self) -> str:
        return str(self.attempts[-1]["result"]) if self.attempts else ""


async def post(rt: Runtime, notice_id: int, key: str, to: str, parts: Sequence[str],
               purpose: str) -> list[str]:
    """Queue `parts` to `to` under ids `<key>:<n>`, to be sent in order (each part's job
    queues the next when it is done). A part already posted is not posted again, but the
    first pending one is queued again, so a crash between writing and enqueueing loses
    nothing. Returns the message ids."""
    ids = []
    for n, text in enumerate(parts, 1):
        mid = f"{key}:{n}"
        ids.append(mid)
        await rt.redis.hsetnx(rt.keys.outbox(notice_id), mid,
                              OutMessage(to, text, purpose).to_json())
    for mid in ids:
        msg = await _load(rt, notice_id, mid)
        if msg is not None and msg.state == PENDING:
            await rt.queue.enqueue([Job("tell", notice_id, mid)])
            break
    return ids


async def tell(rt: Runtime, job: Job, worker: str) -> Result:
    """Job `tell`: send one posted message; retry a passing failure later."""
    msg = await _load(rt, job.notice, job.ref)
    if msg is None or msg.state != PENDING:
        return Result.DONE
    grant = await rate_gate(rt, job, rt.costs.app_message(msg.to))
    if grant is None:
        return Result.DONE
    try:
        async with rt.limiter.restamped(grant):
            await rt.wecom.send_text(msg.to, msg.text)
    except (TransientError, AmbiguousError, RateLimitedError) as error:
        await _failed_try(rt, job, msg, error)
        return Result.DONE
    except WeComError as error:  # trying again cannot help
        await _save(rt, job, msg, FAILED, str(error))
        log.warning("! bcast=%s message %s to %s refused: %s", job.notice, job.ref, msg.to, error)
        await _next_part(rt, job)
        return Result.DONE
    await _save(rt, job, msg, SENT, "ok")
    await _next_part(rt, job)
    return Result.DONE


async def _next_part(rt: Runtime, job: Job) -> None:
    key, _, n = job.ref.rpartition(":")
    following = f"{key}:{int(n) + 1}"
    if await rt.redis.hexists(rt.keys.outbox(job.notice), following):
        await rt.queue.enqueue([Job("tell", job.notice, following)])


async def _failed_try(rt: Runtime, job: Job, msg: OutMessage, error: WeComError) -> None:
    tries = len(msg.attempts) + 1
    delay = error.retry_after if isinstance(error, RateLimitedError) else retry_delay(rt, tries)
    if delay is None:
        await _save(rt, job, msg, FAILED, str(error))
        log.warning("! bcast=%s message %s to %s failed %d times: %s", job.notice, job.ref,
                    msg.to, tries, error)
        await _next_part(rt, job)
        return
    await _save(rt, job, msg, PENDING, str(error))
    await rt.queue.defer([job], rt.clock.now() + delay)
    log.info("↻ bcast=%s message %s to %s: %s; again in %.0f s", job.notice, job.ref, msg.to,
             error, delay)


async def _save(rt: Runtime, job: Job, msg: OutMessage, state: str, result: str) -> None:
    msg.state = state
    msg.attempts.append({"at": round(rt.clock.now(), 3), "result": result[:200]})
    await rt.redis.hset(rt.keys.outbox(job.notice), job.ref, msg.to_json())


async def _load(rt: Runtime, notice_id: int, mid: str) -> OutMessage | None:
    raw = await rt.redis.hget(rt.keys.outbox(notice_id), mid)
    return OutMessage.from_json(str(raw)) if raw else None


async def messages(rt: Runtime, notice_id: int) -> dict[str, OutMessage]:
    """Every posted message of a notice by id."""
    raw = smap(await rt.redis.hgetall(rt.keys.outbox(notice_id)))
    return {mid: OutMessage.from_json(v) for mid, v in raw.items()}


async def failed(rt: Runtime, notice_id: int) -> list[OutMessage]:
    """Messages that could not be delivered, in id order."""
    found = await messages(rt, notice_id)
    return [found[m] for m in sorted(found) if found[m].state == FAILED]
