"""What a due response clock does: a case nobody took goes to the township's supervisor, and
one more limit later to the county's. Each step is a compare-and-set on the case's escalation
level, so a clock run twice (a runner died mid-action) escalates once."""

from __future__ import annotations

import logging

from cases import clocks, notify, texts
from cases.clocks import Clock
from cases.deps import CasesDeps
from cases.models import Case, Entry, Status
from cases.routing import supervisors

log = logging.getLogger(__name__)
WAITING = (Status.NEW, Status.REOPENED)


class _Skip(Exception):
    """The case moved on (taken, closed, already escalated): nothing to do."""


async def fire(deps: CasesDeps, clock: Clock) -> None:
    case = await deps.store.get(f"E{clock.number}")
    if case is None or case.status not in WAITING:
        return
    level = 1 if clock.kind == "respond" else 2
    if case.respond_due > clock.due + 0.001 and level == 1:
        return  # the due time moved (urgency corrected): a newer clock exists
    code = case.township if level == 1 else (case.county or case.township)
    targets = [u for u in await supervisors(deps.registry, code) if u not in case.escalated_to]
    if level == 2 and not targets:
        return
    now = deps.now()

    def escalate(c: Case) -> Case:
        if c.status not in WAITING or c.escalation >= level:
            raise _Skip
        return c.with_(escalation=level, escalated_to=(*c.escalated_to, *targets))

    who = "乡镇街道" if level == 1 else "县区"
    entry = Entry(now, "系统", "升级", f"超时未接单，升级至{who}负责人")
    try:
        changed = await deps.store.update(case.id, escalate, entry)
    except _Skip:
        return
    assert changed is not None
    await deps.audit.record("system", "cases.escalate", "ok", target=changed.id,
                            detail=f"level {level}")
    waited = texts.minutes(now - changed.created_at)
    await notify.tell(deps, targets, f"【超时升级 {changed.id}】{changed.category.value}·"
                                     f"{changed.urgency.value}，已 {waited} 无人接单。\n"
                                     f"{changed.text}\n可回复「接单 {changed.id}」或「转交 "
                                     f"{changed.id} 对方账号」。")
    await notify.tell(deps, changed.officers, f"【提醒】事件 {changed.id} 超时未接单，"
                                              f"已升级至{who}负责人。")
    if level == 1:
        limit = deps.config.escalate_county_after_seconds or (changed.respond_due
                                                              - changed.created_at)
        await clocks.schedule(deps, Clock(changed.number, "respond2", now + limit))
