"""Review (核查), lookup (查询) and the to-do list (我的待办).

Lookups answer the same sentence for "not found" and "not in your area", so nobody learns
whether a number is registered outside their jurisdiction; the audit log records which it was.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from collect.deps import CollectDeps
from collect.models import Change, ChangeKind, HistoryEntry, Record, RecordKind, ReviewState
from collect.results import Outcome, Result
from collect.validate import Issue, Severity, check_id_number, today
from registry.models import Role

# addresses are registered on the way by every person/house/unit; only these wait for review
TODO_KINDS = (RecordKind.PERSON, RecordKind.HOUSE, RecordKind.UNIT)
NOT_FOUND = "未找到您辖区内的该记录，请核对编号或身份证号码"


async def review(deps: CollectDeps, userid: str, record_id: str, approve: bool, reason: str,
                 source: str) -> Result:
    record = await deps.store.get(record_id.upper())
    if record is None:
        issue = Issue("record", Severity.ERROR, f"记录编号：找不到 {record_id}，请核对编号")
        return Result(Outcome.REFUSED, (issue,))
    denied = await deps.access.may_review(userid, record.node)
    if denied:
        await deps.record_audit(userid, "collect.review", "refused", target=record.id,
                                detail=denied, source=source)
        return Result(Outcome.FORBIDDEN, message=denied)
    if not approve and not reason.strip():
        issue = Issue("reason", Severity.ERROR,
                      "退回原因：请写明原因，如 核查 P12 退回 门牌号有误")
        return Result(Outcome.REFUSED, (issue,))
    for _ in range(6):
        saved = await _set_state(deps, userid, record, approve, reason, source)
        if saved is not None:
            await deps.record_audit(userid, "collect.review", "ok", target=record.id,
                                    detail=saved.state.label, source=source)
            return Result(Outcome.STORED, record=saved)
        fresh = await deps.store.get(record.id)
        record = fresh if fresh is not None else record
    return Result(Outcome.BUSY, message="系统繁忙，请稍后重试")


async def _set_state(deps: CollectDeps, userid: str, record: Record, approve: bool,
                     reason: str, source: str) -> Record | None:
    state = ReviewState.VERIFIED if approve else ReviewState.RETURNED
    now = deps.now()
    new = replace(record, state=state, note="" if approve else reason.strip(),
                  updated_at=now, updated_by=userid, version=record.version + 1)
    change = Change("核查状态", record.state.label, state.label)
    kind = ChangeKind.VERIFY if approve else ChangeKind.RETURN
    entry = HistoryEntry(now, userid, kind, reason.strip(), source, (change,))
    if not await deps.store.save(new, entry, expect_version=record.version):
        return None
    path = [n.code for n in await deps.registry.path(record.node)]
    await deps.store.reindex(new, path, record, path)
    return new


@dataclass(frozen=True, slots=True)
class Lookup:
    allowed: bool
    record: Record | None = None
    history: tuple[HistoryEntry, ...] = ()
    message: str = ""


async def lookup(deps: CollectDeps, userid: str, query: str, source: str) -> Lookup:
    """A record by id (P12) or ID number, for 民警 covering its node; always audited."""
    person = await deps.access.person(userid)
    if person is None or person.role is not Role.OFFICER:
        await deps.record_audit(userid, "collect.lookup", "refused", detail="非民警",
                                source=source)
        return Lookup(False, message="无权查询：仅限辖区民警")
    record = await _find(deps, query)
    if record is None:
        await deps.record_audit(userid, "collect.lookup", "ok", detail="未找到", source=source)
        return Lookup(False, message=NOT_FOUND)
    denied = await deps.access.may_reveal(userid, record.node)
    if denied:
        await deps.record_audit(userid, "collect.lookup", "refused", target=record.id,
                                detail=denied, source=source)
        return Lookup(False, message=NOT_FOUND)
    await deps.record_audit(userid, "collect.lookup", "ok", target=record.id, source=source)
    return Lookup(True, record, tuple(await deps.store.history(record.id)))


async def _find(deps: CollectDeps, query: str) -> Record | None:
    text = query.strip().upper()
    if RecordKind.of_id(text) and text[1:].isdigit():
        return await deps.store.get(text)
    checked = check_id_number(text, today(deps.clock))
    if any(i.severity is Severity.ERROR for i in checked.issues):
        return None
    found = await deps.store.lookup(deps.keys.blind("id", deps.blind.digest("id", checked.value)))
    return await deps.store.get(found) if found else None


@dataclass(frozen=True, slots=True)
class Todo:
    pending: tuple[Record, ...]
    returned: tuple[Record, ...]
    declared: tuple[Record, ...]  # residents' self-declarations waiting (source = form)
    pending_total: int
    returned_total: int


async def todo(deps: CollectDeps, userid: str, limit: int = 10) -> Todo:
    """Records 待核查 / 退回 in the nodes `userid` covers, newest first."""
    person = await deps.access.person(userid)
    nodes = person.nodes if person else ()
    found: dict[ReviewState, list[Record]] = {}
    totals: dict[ReviewState, int] = {}
    for state in (ReviewState.PENDING, ReviewState.RETURNED):
        ids: list[str] = []
        totals[state] = 0
        for node in nodes:
            for kind in TODO_KINDS:
                ids += await deps.store.newest(node, kind, state, limit)
                totals[state] += await deps.store.count(node, kind, state)
        records = await deps.store.get_many(list(dict.fromkeys(ids)))
        fresh = [r for r in records if r.state is state]
        found[state] = sorted(fresh, key=lambda r: r.updated_at, reverse=True)
    declared = [r for r in found[ReviewState.PENDING] if r.source == "form"]
    return Todo(tuple(found[ReviewState.PENDING][:limit]),
                tuple(found[ReviewState.RETURNED][:limit]), tuple(declared[:limit]),
                totals[ReviewState.PENDING], totals[ReviewState.RETURNED])
