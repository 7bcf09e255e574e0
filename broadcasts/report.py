"""SLA reports to the issuing officer: at the deadline every group not yet delivered, named
with its place, owner and officer; and a final report once every group is settled (or the
final horizon passed), with latency percentiles, failures and `uncertain` groups.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.wecom.errors import AmbiguousError, TransientError, WeComError
from broadcasts import content
from broadcasts.deps import Runtime
from broadcasts.jobs_common import Result, log, pending_left
from broadcasts.models import NoticeStatus, PairState
from broadcasts.planner import fmt_duration
from broadcasts.progress import Snapshot, percentile, snapshot
from broadcasts.queue import Job
from broadcasts.state import Item
from broadcasts.tracking import still_waiting

REPORT_TRIES = 4
REPORT_BACKOFF = 2.0  # seconds before the second try; doubled for each one after


async def deadline(rt: Runtime, job: Job, worker: str) -> Result:
    """Job `deadline`: mark waiting groups late and name every late group to the officer."""
    notice = await rt.notice(job.notice)
    if notice is None:
        return Result.DONE
    await still_waiting(rt, notice)  # fresh status first: no one is named by a stale poll
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
    lines = await late_lines(rt, snap, late)
    total = snap.total
    delivered = total - len(late)
    header = (f"【时限报告】通知 #{snap.notice.id}（{snap.notice.level.label}）已满 "
              f"{fmt_duration(snap.deadline_at - snap.notice.started_at)}：按时送达 "
              f"{delivered}/{total}。以下 {len(late)} 个群未按时送达：")
    await tell(rt, snap.notice.issuer, content.chunks(header, lines))
    log.info("⏰ bcast=%s deadline: %d/%d in time", job.notice, delivered, total)
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


async def final_text(rt: Runtime, snap: Snapshot) -> tuple[str, list[str]]:
    """Header and lines of the final report."""
    counts, lat = snap.counts(), snap.latencies()
    waiting = counts.get(PairState.LATE, 0) + counts.get(PairState.AWAITING_OWNER, 0)
    n = snap.notice
    p50, p95, p99 = (percentile(lat, q) for q in (0.5, 0.95, 0.99))
    header = (f"【结束报告】通知 #{n.id}（{n.level.label}）共 {snap.total} 个群：已送达 "
              f"{counts.get(PairState.DELIVERED, 0)}（时限内 {snap.in_time()}），失败 "
              f"{counts.get(PairState.FAILED, 0)}，状态不明 {counts.get(PairState.UNCERTAIN, 0)}，"
              f"未确认 {waiting}" + _open_words(counts) + "。")
    if p50 is not None:
        header += (f"\n送达用时：中位 {fmt_duration(p50)}，95% {fmt_duration(p95 or 0)}，"
                   f"99% {fmt_duration(p99 or 0)}。")
    lines: list[str] = []
    for state, title in ((PairState.FAILED, "失败："),
                         (PairState.UNCERTAIN, "状态不明（系统不会重发，请人工核实）："),
                         (PairState.LATE, "群主始终未确认："),
                         (PairState.PLANNED, "到期仍未发出："),
                         (PairState.SUBMITTED, "到期仍在发送中（系统不会重发，请人工核实）：")):
        chats = sorted(c for c, r in snap.pairs.items() if r.state is state)
        if chats:
            lines.append(title)
            lines += await late_lines(rt, snap, chats)
    return header, lines


def _open_words(counts: dict[PairState, int]) -> str:
    """The header's remaining headings, so that they add up to the groups targeted: pairs
    (at the final horizon only) never sent or still in flight."""
    words = [f"{label} {counts[state]}" for state, label in (
        (PairState.PLANNED, "未发出"), (PairState.SUBMITTED, "发送中")) if counts.get(state, 0)]
    return "".join(f"，{w}" for w in words)


async def late_lines(rt: Runtime, snap: Snapshot, chats: Sequence[str]) -> list[str]:
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
            else _state_words(snap, g.chat_id)
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
        await rt.limiter.acquire(rt.costs.app_message(userid))
        try:
            await rt.wecom.send_text(userid, text)
            return None
        except (TransientError, AmbiguousError) as passing:
            error = passing
        except WeComError as permanent:  # trying again cannot help
            return permanent
    return error
