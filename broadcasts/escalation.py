"""Escalation: owners still not confirming are named to their grid's officer, later to the
township's supervisor — one message per recipient listing all of their waiting owners, so a
busy officer is not flooded past WeCom's 30 app messages a minute per member.

The clocks are `escalate` jobs due in the queue's sorted set (engine._schedule_timers): any
worker runs them when due, a restart neither loses nor delays them. The look at WeCom before
naming owners takes only rate that is free now (a saturated polling budget must not hold an
escalation back), and the messages go through outbox.post: durable, retried on a passing
failure, posted once per recipient however often the job runs.
"""

from __future__ import annotations

from collections import defaultdict

from bot.rtypes import slist
from broadcasts import content, outbox
from broadcasts.deps import Runtime
from broadcasts.jobs_common import Result, log
from broadcasts.models import PlannedGroup
from broadcasts.queue import Job
from broadcasts.state import Unit
from broadcasts.tracking import ESCALATION_LOOK, still_waiting


async def escalate(rt: Runtime, job: Job, worker: str) -> Result:
    """Job `escalate` (ref `officer` or `supervisor`): who still waits, and tell their chiefs."""
    notice = await rt.notice(job.notice)
    if notice is None or notice.settled_at:
        return Result.DONE
    waiting = await still_waiting(rt, notice, wait=False, budget=ESCALATION_LOOK)
    if not waiting:
        return Result.DONE
    groups = await rt.plans.groups(job.notice)
    acked = set(slist(await rt.redis.hkeys(rt.keys.acks(job.notice))))
    supervisor = job.ref == "supervisor"
    per_chief = by_chief(waiting, groups, acked, supervisor)
    names = await _names(rt, {u.owner for u in waiting})
    waited = rt.clock.now() - notice.started_at
    for chief, units in sorted(per_chief.items()):
        # posting again is harmless (the first text stays; a pending part is queued again),
        # so a run interrupted between posting and queueing loses nothing
        rows = [(names.get(u.owner, u.owner), [groups[c].name for c in u.chats if c in groups])
                for u in units]
        header = content.escalation_header(notice, waited, supervisor)
        await outbox.post(rt, job.notice, f"esc:{job.ref}:{chief}", chief,
                          content.chunks(header, content.escalation_lines(rows)),
                          f"escalate_{job.ref}")
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
