"""Escalation: owners still not confirming are named to their grid's officer, later to the
township's supervisor — one message per recipient listing all of their waiting owners, so a
busy officer is not flooded past WeCom's 30 app messages a minute per member.
"""

from __future__ import annotations

from collections import defaultdict

from bot.rtypes import slist
from bot.wecom.errors import WeComError
from broadcasts import content
from broadcasts.deps import Runtime
from broadcasts.jobs_common import Result, log
from broadcasts.models import PlannedGroup
from broadcasts.queue import Job
from broadcasts.state import Unit
from broadcasts.tracking import still_waiting


async def escalate(rt: Runtime, job: Job, worker: str) -> Result:
    """Job `escalate` (ref `officer` or `supervisor`): who still waits, and tell their chiefs."""
    notice = await rt.notice(job.notice)
    if notice is None or notice.settled_at:
        return Result.DONE
    waiting = await still_waiting(rt, notice)
    if not waiting:
        return Result.DONE
    groups = await rt.plans.groups(job.notice)
    acked = set(slist(await rt.redis.hkeys(rt.keys.acks(job.notice))))
    supervisor = job.ref == "supervisor"
    per_chief = by_chief(waiting, groups, acked, supervisor)
    names = await _names(rt, {u.owner for u in waiting})
    waited = rt.clock.now() - notice.started_at
    for chief, units in sorted(per_chief.items()):
        if not await rt.notices.mark_once(job.notice, f"esc:{job.ref}:{chief}"):
            continue
        rows = [(names.get(u.owner, u.owner), [groups[c].name for c in u.chats if c in groups])
                for u in units]
        header = content.escalation_header(notice, waited, supervisor)
        await _tell(rt, chief, content.chunks(header, content.escalation_lines(rows)))
    log.info("⇡ bcast=%s %s escalation: %d owners, %d recipients", job.notice, job.ref,
             len(waiting), len(per_chief))
    return Result.DONE


def by_chief(units: list[Unit], groups: dict[str, PlannedGroup], acked: set[str],
             supervisor: bool) -> dict[str, list[Unit]]:
    """Waiting units per officer (or supervisor); owners who said 已转达 are left out."""
    out: dict[str, list[Unit]] = defaultdict(list)
    for unit in units:
        if unit.owner in acked:
            continue
        chiefs: set[str] = set()
        for chat in unit.chats:
            g = groups.get(chat)
            if g is not None:
                chiefs.update(g.supervisors if supervisor else g.officers)
        for chief in chiefs:
            out[chief].append(unit)
    return out


async def _names(rt: Runtime, userids: set[str]) -> dict[str, str]:
    people = await rt.registry.people(userids)
    return {p.userid: f"{p.name}（{p.userid}）" for p in people}


async def _tell(rt: Runtime, userid: str, messages: list[str]) -> None:
    for text in messages:
        await rt.limiter.acquire(rt.costs.app_message(userid))
        try:
            await rt.wecom.send_text(userid, text)
        except WeComError as error:
            log.warning("! escalation to %s failed: %s", userid, error)
            return
