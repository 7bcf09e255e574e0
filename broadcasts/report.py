"""SLA reports to the issuing officer: at the deadline every group not yet delivered, named
with its place, owner and officer; and a final report once every group is settled (or the
final horizon passed), with latency percentiles, failures and `uncertain` groups.

A report is a fact or says it is a guess. Before the deadline report every owner task still
open is read from WeCom (each poll chain also plans a poll just before the deadline, inside
the polling budget: tracking.poll); a task WeCom could not be asked about is named as
「未能核实」, not as late. What the report said is kept (`reported`); when WeCom later tells
something that changes it (a group reported late was delivered in time, an unverified one is
known), the `correct` job sends the officer a short 【更正】 (through the outbox: durable).
A report asked for before the notice settles (`gridbot broadcast report`, 进度) is a
【进度报告】, never 【结束报告】, and calls no group late before the deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bot.rtypes import smap
from bot.wecom.errors import AmbiguousError, RateLimitedError, TransientError, WeComError
from broadcasts import content, outbox
from broadcasts.deps import Runtime
from broadcasts.jobs_common import Result, log, pending_left
from broadcasts.models import PENDING_STATES, Notice, NoticeStatus, PairState
from broadcasts.planner import fmt_duration
from broadcasts.progress import Snapshot, percentile, snapshot
from broadcasts.queue import Job
from broadcasts.state import Item, Unit
from broadcasts.tracking import AWAITING, REFRESH_CONCURRENCY, refresh_unit

UNVERIFIED = "未能核实（企业微信暂不可查，可能已送达）"
LOOK_TRIES = 3

REPORT_TRIES = 4
REPORT_BACKOFF = 2.0  # seconds before the second try; doubled for each one after


async def deadline(rt: Runtime, job: Job, worker: str) -> Result:
    """Job `deadline`: mark waiting groups late and name every late group to the officer."""
    notice = await rt.notice(job.notice)
    if notice is None:
        return Result.DONE
    unread = await last_look(rt, notice)  # fresh status first: no one named by a stale poll
    unverified = {c for u in unread for c in u.chats}
    await record_owners(rt, notice, {u.name for u in unread})
    if unread:  # look again soon: what WeCom then says corrects the report (`correct`)
        again = rt.clock.now() + (rt.config.retry_delays[1:2] or [30.0])[0]
        await rt.queue.defer([Job("poll", notice.id, u.name) for u in unread], again)
    snap = await snapshot(rt, job.notice)
    if snap is None:
        return Result.DONE
    waiting = [c for c, r in snap.pairs.items() if r.state is PairState.AWAITING_OWNER]
    await rt.state.transition(job.notice, [Item(c) for c in waiting],
                              [PairState.AWAITING_OWNER], PairState.LATE, now=rt.clock.now())
    late = snap.late()
    if not late or snap.notice.settled_at:
        return Result.DONE
    if not await rt.notices.mark_once(job.notice, "report:deadline"):
        return Result.DONE
    unsure = {c for c in late if c in unverified}
    lines = await late_lines(rt, snap, late, unsure)
    total = snap.total
    delivered = total - len(late)
    header = (f"【时限报告】通知 #{snap.notice.id}（{snap.notice.level.label}）已满 "
              f"{fmt_duration(snap.deadline_at - snap.notice.started_at)}：按时送达 "
              f"{delivered}/{total}。以下 {len(late)} 个群未确认按时送达：")
    if unsure:
        header += f"（其中 {len(unsure)} 个群未能向企业微信核实，是推测；核实后另行更正）"
    await rt.redis.hset(rt.keys.reported(job.notice),
                        mapping={c: ("unverified" if c in unsure else "late") for c in late})
    await tell(rt, snap.notice.issuer, content.chunks(header, lines))
    log.info("⏰ bcast=%s deadline: %d/%d in time", job.notice, delivered, total)
    return Result.DONE


async def record_owners(rt: Runtime, notice: Notice, unknown: set[str]) -> None:
    """Count, once per notice, every owner who was asked (a task was created) and whether
    they confirmed by the deadline: the forecast's history (planner.owner_forecast) counts
    those who never confirmed too. Tasks WeCom could not be asked about are left out."""
    if not await rt.redis.sadd(rt.keys.owner_record_notices(), str(notice.id)):
        return
    counts: dict[str, int] = {}
    for unit in await rt.state.units(notice.id):
        if not unit.msgid or unit.name in unknown:
            continue
        counts[f"{unit.owner}:asked"] = counts.get(f"{unit.owner}:asked", 0) + 1
        if 0 < unit.confirmed_at <= notice.deadline_at:
            counts[f"{unit.owner}:in_time"] = counts.get(f"{unit.owner}:in_time", 0) + 1
    if counts:
        pipe = rt.redis.pipeline(transaction=False)
        for field, n in counts.items():
            pipe.hincrby(rt.keys.owner_record(), field, n)
        await pipe.execute()


async def last_look(rt: Runtime, notice: Notice) -> list[Unit]:
    """Read every owner task still open from WeCom, in rounds (a task whose read failed for a
    passing reason is read again after a short wait); the tasks that could still not be
    read, whose state is therefore a guess."""
    units = [u for u in await rt.state.units(notice.id) if u.state == AWAITING]
    gate = asyncio.Semaphore(REFRESH_CONCURRENCY)

    async def look(unit: Unit) -> bool | None:  # None: try again
        async with gate:
            try:
                async with rt.limiter.hold(rt.costs.api("get_groupmsg_task")):
                    await refresh_unit(rt, notice, unit)
                return True
            except (TransientError, AmbiguousError, RateLimitedError):
                return None
            except WeComError:
                return False

    refused: list[Unit] = []
    for attempt in range(LOOK_TRIES):
        if attempt:
            await rt.clock.sleep(REPORT_BACKOFF * 2 ** (attempt - 1))
        answers = await asyncio.gather(*(look(u) for u in units))
        refused += [u for u, ok in zip(units, answers, strict=True) if ok is False]
        units = [u for u, ok in zip(units, answers, strict=True) if ok is None]
        if not units:
            break
    return [*units, *refused]


async def correct(rt: Runtime, job: Job, worker: str) -> Result:
    """Job `correct`: tell the officer what WeCom said since the deadline report about groups
    that report named (each group corrected once)."""
    reported = smap(await rt.redis.hgetall(rt.keys.reported(job.notice)))
    snap = await snapshot(rt, job.notice) if reported else None
    if snap is None:
        return Result.DONE
    limit = snap.deadline_at - snap.notice.started_at
    changed: list[str] = []
    for chat, said in sorted(reported.items()):
        rec = snap.pairs.get(chat)
        if rec is None or rec.state in PENDING_STATES:
            continue
        lat = snap.latency(chat)
        if (said == "late" and (lat is None or lat > limit)):
            continue  # the report was right: not delivered in time
        if await rt.redis.sadd(rt.keys.corrected(job.notice), chat):
            changed.append(chat)
    if not changed:
        return Result.DONE
    n = await rt.notices.count(job.notice, "corrections")
    header = (f"【更正】通知 #{snap.notice.id} 的时限报告有 {len(changed)} 个群与企业微信后来"
              "告知的不符，以此为准：")
    lines = [f"{i}.「{snap.groups[c].name}」{_state_words(snap, c)}"
             for i, c in enumerate(changed, 1) if c in snap.groups]
    await outbox.post(rt, job.notice, f"corr:{n}", snap.notice.issuer,
                      content.chunks(header, lines), "correct")
    log.info("✎ bcast=%s correction: %d groups", job.notice, len(changed))
    return Result.DONE


async def final(rt: Runtime, job: Job, worker: str) -> Result:
    """Job `final`: once nothing is pending (or at the horizon), settle and report."""
    snap = await snapshot(rt, job.notice)
    if snap is None or snap.notice.status is not NoticeStatus.SENDING:
        return Result.DONE
    counts = await rt.state.counts(job.notice)
    if job.ref != "horizon" and pending_left(counts):
        return Result.DONE
    if not await rt.notices.mark_once(job.notice, "report:final"):
        return Result.DONE
    # report first: whoever sees SETTLED may rely on the officer having the final report
    header, lines = await final_text(rt, snap)
    await tell(rt, snap.notice.issuer, content.chunks(header, lines))
    now = rt.clock.now()
    await rt.notices.move(job.notice, [NoticeStatus.SENDING], NoticeStatus.SETTLED,
                          {"settled_at": repr(now)})
    log.info("✓ bcast=%s settled", job.notice)
    return Result.DONE


async def final_text(rt: Runtime, snap: Snapshot, *, final: bool = True
                     ) -> tuple[str, list[str]]:
    """Header and lines of the final report; final=False: a progress report of a notice not
    yet settled (never called 结束)."""
    counts, lat = snap.counts(), snap.latencies()
    waiting = counts.get(PairState.LATE, 0) + counts.get(PairState.AWAITING_OWNER, 0)
    n = snap.notice
    p50, p95, p99 = (percentile(lat, q) for q in (0.5, 0.95, 0.99))
    title = "【结束报告】" if final else (
        f"【进度报告】（尚未结束，截至第 {fmt_duration(max(0.0, snap.now - n.started_at))}）")
    header = (f"{title}通知 #{n.id}（{n.level.label}）共 {snap.total} 个群：已送达 "
              f"{counts.get(PairState.DELIVERED, 0)}（时限内 {snap.in_time()}），失败 "
              f"{counts.get(PairState.FAILED, 0)}，状态不明 {counts.get(PairState.UNCERTAIN, 0)}，"
              f"未确认 {waiting}" + _open_words(counts) + "。")
    if p50 is not None:
        header += (f"\n送达用时：中位 {fmt_duration(p50)}，95% {fmt_duration(p95 or 0)}，"
                   f"99% {fmt_duration(p99 or 0)}。")
    lines: list[str] = []
    for state, what in ((PairState.FAILED, "失败："),
                        (PairState.UNCERTAIN, "状态不明（系统不会重发，请人工核实）："),
                        (PairState.LATE, "群主始终未确认：" if final else "超时仍未确认："),
                        (PairState.PLANNED, "到期仍未发出："),
                        (PairState.SUBMITTED, "到期仍在发送中（系统不会重发，请人工核实）：")):
        chats = sorted(c for c, r in snap.pairs.items() if r.state is state)
        if chats:
            lines.append(what)
            lines += await late_lines(rt, snap, chats)
    lost = await outbox.failed(rt, n.id)
    if lost:
        lines.append("以下消息多次发送失败，对方未收到，请电话联系：")
        lines += await lost_lines(rt, lost)
    return header, lines


def _open_words(counts: dict[PairState, int]) -> str:
    """The header's remaining headings, so that they add up to the groups targeted: pairs
    (at the final horizon only) never sent or still in flight."""
    words = [f"{label} {counts[state]}" for state, label in (
        (PairState.PLANNED, "未发出"), (PairState.SUBMITTED, "发送中")) if counts.get(state, 0)]
    return "".join(f"，{w}" for w in words)


async def lost_lines(rt: Runtime, lost: Sequence[outbox.OutMessage]) -> list[str]:
    """`1. 催办 → 王五（wangwu），3 次尝试，最后：…` per message that never arrived."""
    people = await rt.registry.people({m.to for m in lost})
    who = {p.userid: p.name for p in people}
    return [f"{i}. {outbox.PURPOSES.get(m.purpose, m.purpose)} → {who.get(m.to, m.to)}"
            f"（{m.to}），{len(m.attempts)} 次尝试，最后：{m.last_error}"
            for i, m in enumerate(lost, 1)]


async def late_lines(rt: Runtime, snap: Snapshot, chats: Sequence[str],
                     unsure: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """`1. 孝义市/新义街道/…「群名」群主 李四（lisi） 民警 王五 — 待群主确认` per chat."""
    groups = [snap.groups[c] for c in chats if c in snap.groups]
    codes = {code for g in groups for code in g.path[1:]}
    nodes = await rt.registry.nodes(sorted(codes))
    place = {n.code: n.name for n in nodes if n is not None}
    people = await rt.registry.people({u for g in groups for u in (g.owner, *g.officers) if u})
    who = {p.userid: p.name for p in people}
    out = []
    for i, g in enumerate(groups, 1):
        rec = snap.pairs[g.chat_id]
        path = "/".join(place.get(code, code) for code in g.path[1:])
        owner = f" 群主 {who.get(g.owner, g.owner)}（{g.owner}）" if g.owner else ""
        officers = "、".join(who.get(o, o) for o in g.officers) or "未登记"
        state = rec.detail if rec.state in (PairState.FAILED, PairState.UNCERTAIN) and rec.detail \
            else UNVERIFIED if g.chat_id in unsure else _state_words(snap, g.chat_id)
        out.append(f"{i}. {path}「{g.name}」{owner} 民警 {officers} — {state}")
    return out


def _state_words(snap: Snapshot, chat: str) -> str:
    rec = snap.pairs[chat]
    lat = snap.latency(chat)
    if lat is not None:
        return f"已送达（用时 {fmt_duration(lat)}）"
    return rec.state.label


async def tell(rt: Runtime, userid: str, messages: list[str]) -> None:
    """1:1 messages to `userid`, within the per-member ceiling.

    The report is sent once (its job is marked done first), so a part that fails for a
    passing reason is sent again, up to REPORT_TRIES times: message/send's duplicate check
    makes that safe even when the failed try was delivered. A part that still fails is
    logged and the next part still goes out; `gridbot broadcast report` prints it all.
    """
    for part, text in enumerate(messages, 1):
        error = await _send_part(rt, userid, text)
        if error is not None:
            log.warning("! report part %d/%d to %s failed: %s", part, len(messages), userid,
                        error)


async def _send_part(rt: Runtime, userid: str, text: str) -> WeComError | None:
    """Send one part, trying again on a passing failure; None once sent, else the error."""
    error: WeComError | None = None
    for attempt in range(REPORT_TRIES):
        if attempt:
            await rt.clock.sleep(REPORT_BACKOFF * 2 ** (attempt - 1))
        try:
            async with rt.limiter.hold(rt.costs.app_message(userid)):
                await rt.wecom.send_text(userid, text)
            return None
        except (TransientError, AmbiguousError) as passing:
            error = passing
        except WeComError as permanent:  # trying again cannot help
            return permanent
    return error
