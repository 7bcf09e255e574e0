"""Changes to an existing record by a collector: 更正 (field corrections), 搬离 and 注销.

A corrected ID number moves the record's blind-index entry (refused when another record
already holds the new number); a corrected address re-attaches the record to its new node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from collect.access import Actor
from collect.deps import CollectDeps
from collect.models import Change, ChangeKind, HistoryEntry, Record, RecordKind, ReviewState
from collect.records import merge, reveal
from collect.resolve import Resolved
from collect.results import Outcome, Result, Submission, verdict
from collect.schema import DERIVED
from collect.service import CollectService
from collect.tenants import resolve_tenants
from collect.validate import Issue, Severity, check_record, today

_SOURCES = {"id_number": ("sex", "birth_date", "sex_code"), "uscc": ("unit_type",)}


def _missing(record_id: str) -> Result:
    issue = Issue("record", Severity.ERROR, f"记录编号：找不到 {record_id}，请核对编号（如 P12）")
    return Result(Outcome.REFUSED, (issue,))


async def _guard(deps: CollectDeps, actor: Actor, record_id: str, action: str,
                 source: str) -> Record | Result:
    record = await deps.store.get(record_id.upper())
    if record is None:
        return _missing(record_id)
    denied = await deps.access.may_collect(actor, record.node)
    if denied:
        await deps.record_audit(actor, action, "refused", target=record.id, detail=denied,
                                source=source)
        return Result(Outcome.FORBIDDEN, message=denied)
    return record


async def correct(deps: CollectDeps, sub: Submission, record_id: str) -> Result:
    """Apply the corrected fields in `sub.values` to `record_id` (kind taken from the record)."""
    found = await _guard(deps, sub.actor, record_id, "collect.correct", sub.source)
    if isinstance(found, Result):
        return found
    record = found
    old = reveal(record, deps.cipher)
    wanted = _merged_input(old, sub.values)
    checked = check_record(record.kind, wanted, today(deps.clock))
    relevant = set(sub.values) | {d for s in sub.values for d in _SOURCES.get(s, ())}
    issues = tuple(i for i in checked.issues if i.field in relevant)
    service = CollectService(deps)
    where = await service.where(sub.actor, sub.values) if "address" in sub.values else None
    if isinstance(where, Resolved):
        denied = await deps.access.may_collect(sub.actor, where.node.code)
        if denied:
            return Result(Outcome.FORBIDDEN, message=denied)
    elif isinstance(where, Issue):
        issues = (*issues, where)
    values, link_issues = await resolve_tenants(deps, {k: v for k, v in checked.values.items()
                                                       if k in relevant})
    issues = (*issues, *link_issues, *await _id_conflict(deps, record, values))
    pending = verdict(issues, confirmed=sub.confirmed, override=sub.override)
    if pending is not None:
        return Result(pending, issues)
    if isinstance(where, Resolved):
        address, _, _ = await service.register_address(sub, where)
        values = {**values, "address_id": address.id, "address_full": where.full_text}
    return await _apply(deps, sub, record, values, where if isinstance(where, Resolved) else None)


def _merged_input(old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, str]:
    """Old values overlaid with the corrections; values derived from a corrected source are
    dropped so the validator derives them again."""
    merged = {k: v for k, v in old.items() if k not in DERIVED or k in new}
    for source, derived in _SOURCES.items():
        if source in new:
            for name in derived:
                if name not in new:
                    merged.pop(name, None)
    merged.update(new)
    return merged


async def _id_conflict(deps: CollectDeps, record: Record,
                       values: Mapping[str, str]) -> tuple[Issue, ...]:
    number = values.get("id_number")
    if record.kind is not RecordKind.PERSON or not number:
        return ()
    holder = await deps.store.lookup(deps.keys.blind("id", deps.blind.digest("id", number)))
    if holder is None or holder == record.id:
        return ()
    return (Issue("id_number", Severity.ERROR, f"公民身份号码：该号码已登记在 {holder}，请核对；"
                  "如为同一人，请在该记录上更正"),)


async def _apply(deps: CollectDeps, sub: Submission, record: Record, values: dict[str, str],
                 where: Resolved | None) -> Result:
    old_digest = record.fields.get("id_bidx", "")
    if record.kind is RecordKind.PERSON and values.get("id_number"):
        values["id_bidx"] = deps.blind.digest("id", values["id_number"])
    for _ in range(6):
        saved = await _save(deps, sub, record, values, where)
        if saved is not None:
            await _move_blind(deps, saved[0], old_digest)
            await deps.record_audit(sub.actor, "collect.correct", "ok", target=record.id,
                                    detail=sub.change.value, source=sub.source)
            return Result(Outcome.STORED, (), saved[0], changes=saved[1])
        fresh = await deps.store.get(record.id)
        if fresh is None:
            return _missing(record.id)
        record = fresh
    return Result(Outcome.BUSY, message="系统繁忙，请稍后重试")


async def _save(deps: CollectDeps, sub: Submission, record: Record, values: dict[str, str],
                where: Resolved | None) -> tuple[Record, tuple[Change, ...]] | None:
    merged, changes = merge(record, values, deps.cipher)
    now, who = deps.now(), sub.actor.label
    node = where.node.code if where else record.node
    new = replace(merged, node=node, state=ReviewState.PENDING, note="", updated_at=now,
                  updated_by=who, source=sub.source.split(":", 1)[0], version=record.version + 1)
    entry = HistoryEntry(now, who, sub.change, sub.reason, sub.source, changes)
    if not await deps.store.save(new, entry, expect_version=record.version):
        return None
    old_path = [n.code for n in await deps.registry.path(record.node)]
    new_path = list(where.ancestors) if where else old_path
    await deps.store.reindex(new, new_path, record, old_path)
    return new, changes


async def _move_blind(deps: CollectDeps, record: Record, old_digest: str) -> None:
    new_digest = record.fields.get("id_bidx", "")
    if record.kind is RecordKind.PERSON and new_digest and new_digest != old_digest:
        await deps.store.confirm(deps.keys.blind("id", new_digest), record.id)
        if old_digest:
            await deps.store.release(deps.keys.blind("id", old_digest), record.id)


async def set_status(deps: CollectDeps, actor: Actor, record_id: str, change: ChangeKind,
                     reason: str, source: str) -> Result:
    """搬离 (a person left) or 注销 (any record cancelled): kept, marked, back to 待核查."""
    found = await _guard(deps, actor, record_id, "collect.status", source)
    if isinstance(found, Result):
        return found
    status = "搬离" if change is ChangeKind.MOVE_OUT else "注销"
    if change is ChangeKind.MOVE_OUT and found.kind is not RecordKind.PERSON:
        issue = Issue("record", Severity.ERROR, "记录编号：搬离只适用于人口记录（P 开头），"
                      "房屋、单位请用 注销")
        return Result(Outcome.REFUSED, (issue,))
    sub = Submission(found.kind, {}, actor, source, change, reason=reason)
    return await _apply(deps, sub, found, {"status": status}, None)
