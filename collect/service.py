"""Collecting records: validate, resolve the address, check permission, dedupe, store, audit.

One person is one record whoever submits them and however (chat, form, CLI): the record is
found by the keyed blind index of the ID number, and every later submission becomes a history
entry on it. Houses are one per household address, units one per credit code, addresses one
per canonical key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace

from bot.rtypes import text
from collect.access import Actor
from collect.address import canonical, canonical_digest, parts_digest
from collect.deps import CollectDeps
from collect.models import Change, ChangeKind, HistoryEntry, Record, RecordKind, ReviewState
from collect.records import compose, merge
from collect.resolve import Resolved, resolve_address
from collect.results import Outcome, Result, Submission, verdict
from collect.store import ClaimBusyError
from collect.tenants import resolve_tenants
from collect.validate import Issue, Severity, check_record, today
from registry.models import Level

MAX_ATTEMPTS = 6
ADDRESS_PARTS = ("street", "door", "building", "unit", "floor", "room")


class CollectService:
    """Submissions of all four record kinds; see collect/officer.py for review and lookup."""

    def __init__(self, deps: CollectDeps) -> None:
        self.deps = deps

    async def submit(self, sub: Submission) -> Result:
        denied = await self.deps.access.may_collect_at_all(sub.actor)
        if denied:
            await self.deps.record_audit(sub.actor, "collect.submit", "refused", detail=denied,
                                         source=sub.source)
            return Result(Outcome.FORBIDDEN, message=denied)
        values = _with_address_text(sub.kind, sub.values)
        checked = check_record(sub.kind, values, today(self.deps.clock))
        where = await self.where(sub.actor, values)
        if isinstance(where, Resolved):
            denied = await self.deps.access.may_collect(sub.actor, where.node.code)
            if denied:
                await self.deps.record_audit(sub.actor, "collect.submit", "refused",
                                             target=where.node.code, detail=denied,
                                             source=sub.source)
                return Result(Outcome.FORBIDDEN, message=denied)
        linked, link_issues = await resolve_tenants(self.deps, checked.values)
        issues = (*checked.issues, *link_issues, *([where] if isinstance(where, Issue) else []))
        pending = verdict(issues, confirmed=sub.confirmed, override=sub.override)
        if pending is not None or not isinstance(where, Resolved):
            return Result(pending or Outcome.REFUSED, issues)
        return await self._store(sub, linked, where, issues)

    async def where(self, actor: Actor, values: Mapping[str, str]) -> Resolved | Issue | None:
        """The registry node and elements of the submitted address (None: no address given)."""
        typed = values.get("address", "").strip()
        if not typed:
            return None
        hint = values.get("node", "").strip()
        if actor.is_resident and not hint:
            hint = actor.node
        scope = await self.deps.access.scope(actor)
        where = await resolve_address(self.deps.registry, typed, hint=hint, scope=scope)
        return await self._settle(where) if isinstance(where, Resolved) else where

    async def _settle(self, where: Resolved) -> Resolved | Issue:
        """An address must hang on a grid (or building) wherever grids exist, or the same
        household would be registered twice at two levels: above grid level, the known
        address with the same elements in the subtree gives the grid, else ask for it."""
        registry = self.deps.registry
        if where.node.level in (Level.GRID, Level.BUILDING):
            return where
        grids = await registry.nodes_at_level(Level.GRID, under=where.node.code)
        if not grids:
            return where  # e.g. a village without grids: the village is the deepest node
        ids = await self.deps.redis.smembers(self.deps.keys.address_parts(
            parts_digest(where.parts)))
        known = [r for r in await self.deps.store.get_many(sorted(text(i) for i in ids))
                 if r.node != where.node.code and await registry.is_within(r.node,
                                                                           where.node.code)]
        if len(known) == 1:
            path = tuple(await registry.path(known[0].node))
            return Resolved(path[-1], path, where.parts)
        names = "、".join(g.name for g in grids[:5]) + ("等" if len(grids) > 5 else "")
        return Issue("address", Severity.ERROR,
                     f"地址：请写明所属网格（{names}），"
                     f"如 {grids[0].name}/{where.parts.display()}")

    async def _store(self, sub: Submission, values: dict[str, str], where: Resolved,
                     issues: tuple[Issue, ...]) -> Result:
        try:
            address, address_created, _ = await self.register_address(sub, where)
            changes: tuple[Change, ...] = ()
            if sub.kind is RecordKind.ADDRESS:
                record, created = address, address_created
            else:
                record, created, changes = await self._upsert(sub, values, where, address)
        except ClaimBusyError:
            return Result(Outcome.BUSY, issues, message="系统繁忙，请稍后重试")
        await self._after_store(sub, record, where, address)
        return Result(Outcome.STORED, issues, record, address, created, changes)

    async def _after_store(self, sub: Submission, record: Record, where: Resolved,
                           address: Record) -> None:
        from collect.campaign import Campaigns  # campaigns depend on the service's records

        if record.kind is RecordKind.PERSON:
            await Campaigns(self.deps).mark_covered(where, address.id)
        detail = f"{sub.change.value} {record.kind.label}"
        await self.deps.record_audit(sub.actor, "collect.submit", "ok", target=record.id,
                                     detail=detail, source=sub.source)

    async def register_address(self, sub: Submission, where: Resolved
                               ) -> tuple[Record, bool, tuple[Change, ...]]:
        """The standard-address record of `where` (created on first use, one per key)."""
        values = {**where.parts.as_dict(), "address": where.parts.display(),
                  "address_full": where.full_text}
        key = self.deps.keys.address(canonical_digest(where.node.code, where.parts))
        change = sub.change if sub.kind is RecordKind.ADDRESS else ChangeKind.COLLECT
        address_sub = replace(sub, kind=RecordKind.ADDRESS, change=change)
        return await self._upsert_keyed(address_sub, values, where, key)

    async def _upsert(self, sub: Submission, values: dict[str, str], where: Resolved,
                      address: Record) -> tuple[Record, bool, tuple[Change, ...]]:
        values = {**values, "address_id": address.id, "address_full": where.full_text}
        values.pop("address", None)
        values.pop("node", None)
        key = self._dedupe_key(sub.kind, values, address)
        return await self._upsert_keyed(sub, values, where, key)

    def _dedupe_key(self, kind: RecordKind, values: dict[str, str], address: Record) -> str:
        keys = self.deps.keys
        if kind is RecordKind.PERSON:
            values["id_bidx"] = self.deps.blind.digest("id", values["id_number"])
            values.setdefault("status", "在住")
            return keys.blind("id", values["id_bidx"])
        if kind is RecordKind.HOUSE:
            return keys.house_at(address.id)
        return keys.uscc(values["uscc"])

    async def _upsert_keyed(self, sub: Submission, values: dict[str, str], where: Resolved,
                            key: str) -> tuple[Record, bool, tuple[Change, ...]]:
        store = self.deps.store
        for attempt in range(MAX_ATTEMPTS):
            existing = await store.lookup(key)
            if existing is None:
                new_id = await store.next_id(sub.kind)
                try:
                    existing = await store.claim(key, new_id)
                except ClaimBusyError:
                    # another process is writing this very record: give it a moment
                    await asyncio.sleep(0.02 * (attempt + 1))
                    continue
                if existing is None:
                    record = await self._create(new_id, sub, values, where)
                    await store.confirm(key, new_id)
                    return record, True, ()
            updated = await self._update(existing, sub, values, where)
            if updated is not None:
                return updated[0], False, updated[1]
        raise ClaimBusyError(key)

    async def _create(self, record_id: str, sub: Submission, values: Mapping[str, str],
                      where: Resolved) -> Record:
        fields, sealed, masked = compose(sub.kind, record_id, values, self.deps.cipher)
        now, who = self.deps.now(), sub.actor.label
        if sub.kind is RecordKind.ADDRESS:
            fields["canonical"] = canonical(where.node.code, where.parts)
            await self.deps.redis.sadd(
                self.deps.keys.address_parts(parts_digest(where.parts)), record_id)
        record = Record(record_id, sub.kind, where.node.code, ReviewState.PENDING, fields, sealed,
                        masked, now, who, now, who, _source_kind(sub.source), "", 1)
        shown = tuple(Change(name, "", value) for name, value in _shown(record).items())
        entry = HistoryEntry(now, who, sub.change, sub.reason, sub.source, shown)
        if not await self.deps.store.save(record, entry, expect_version=0):
            raise ClaimBusyError(record_id)
        await self.deps.store.reindex(record, where.ancestors)
        return record

    async def _update(self, record_id: str, sub: Submission, values: Mapping[str, str],
                      where: Resolved) -> tuple[Record, tuple[Change, ...]] | None:
        record = await self.deps.store.get(record_id)
        if record is None:
            return None
        if record.kind is RecordKind.ADDRESS:  # same canonical key: nothing to change
            return record, ()
        merged, changes = merge(record, values, self.deps.cipher)
        kind = _change_kind(sub, record, merged, changes)
        state = ReviewState.PENDING if changes else record.state
        now, who = self.deps.now(), sub.actor.label
        new = replace(merged, node=where.node.code, state=state,
                      note="" if changes else record.note, updated_at=now, updated_by=who,
                      source=_source_kind(sub.source), version=record.version + 1)
        entry = HistoryEntry(now, who, kind, sub.reason, sub.source, changes)
        if not await self.deps.store.save(new, entry, expect_version=record.version):
            return None
        old_path = [n.code for n in await self.deps.registry.path(record.node)]
        await self.deps.store.reindex(new, where.ancestors, record, old_path)
        return new, changes


def _change_kind(sub: Submission, old: Record, new: Record,
                 changes: tuple[Change, ...]) -> ChangeKind:
    """Name a re-collection by what happened (入住, 出租); other reasons are kept as given."""
    if not changes or sub.change not in (ChangeKind.COLLECT, ChangeKind.UPDATE):
        return sub.change
    if old.fields.get("address_id") != new.fields.get("address_id"):
        return ChangeKind.MOVE_IN
    if new.fields.get("occupancy") == "出租" and old.fields.get("occupancy") != "出租":
        return ChangeKind.RENT_OUT
    return ChangeKind.UPDATE


def _shown(record: Record) -> dict[str, str]:
    from collect.records import label_of

    names = sorted({*record.fields, *record.masked} - {"id_bidx", "canonical", "address_full"})
    return {label_of(record.kind, n): record.display(n) for n in names
            if not n.endswith("_code")}


def _source_kind(source: str) -> str:
    return source.split(":", 1)[0]


def _with_address_text(kind: RecordKind, values: Mapping[str, str]) -> dict[str, str]:
    """An 采集 地址 given as separate elements (街路巷：… 门牌：…) becomes one address text."""
    out = dict(values)
    if kind is RecordKind.ADDRESS and not out.get("address", "").strip():
        marks = {"door": "号", "building": "栋", "unit": "单元", "floor": "层", "room": "室"}
        out["address"] = "".join(out.get(p, "") + (marks.get(p, "") if out.get(p) else "")
                                 for p in ADDRESS_PARTS)
    return out
