"""The electorate of a matter, snapshotted from the village's 一标三实 person records.

A voter is a person record under the village with status 在住 (not 搬离/注销) and not 境外人员:
* ADULTS: each such person aged 18 or over on the snapshot date (birth date opened with the
  field cipher only here, never stored or shown);
* HOUSEHOLDS: each household address (the record's address_id) with at least one such adult,
  named by its head (与户主关系 户主/本人, else its first adult).
Labels are masked: 张** （振兴路18号3栋2单元501室）.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from collect.address import AddressParts
from collect.deps import CollectDeps
from collect.models import Record, RecordKind
from deliberation.models import Electorate, Voter
from registry.models import Level

_BEIJING = dt.timezone(dt.timedelta(hours=8))
HEAD_CODES = ("02", "01")


@dataclass(frozen=True, slots=True)
class Resident:
    record: Record
    adult: bool
    address_id: str


def _age_on(birth: str, today: dt.date) -> int:
    born = dt.date.fromisoformat(birth)
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


async def residents(deps: CollectDeps, village: str) -> list[Resident]:
    today = dt.datetime.fromtimestamp(deps.now(), _BEIJING).date()
    out: list[Resident] = []
    async for batch in deps.store.scan(village, RecordKind.PERSON):
        for record in batch:
            if record.fields.get("status", "在住") != "在住" or \
                    record.fields.get("population_type") == "境外人员":
                continue
            sealed = record.sealed.get("birth_date")
            birth = deps.cipher.open(sealed, record.id, "birth_date") if sealed else ""
            adult = bool(birth) and _age_on(birth, today) >= 18
            out.append(Resident(record, adult, record.fields.get("address_id", record.id)))
    return out


async def _grids(deps: CollectDeps, nodes: set[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in nodes:
        path = await deps.registry.path(node)
        grid = next((n.code for n in path if n.level is Level.GRID), node)
        found[node] = grid
    return found


async def _addresses(deps: CollectDeps, ids: Sequence[str]) -> dict[str, str]:
    """Address id → its elements below the village (振兴路18号3栋2单元501室)."""
    records = await deps.store.get_many(list(ids))
    names = ("street", "door", "building", "unit", "floor", "room")
    return {r.id: AddressParts(**{n: r.fields.get(n, "") for n in names}).display()
            or r.fields.get("address_full", "") for r in records}


def _name(record: Record) -> str:
    return record.masked.get("name", "") or "*"


async def snapshot(deps: CollectDeps, village: str, electorate: Electorate) -> list[Voter]:
    people = [r for r in await residents(deps, village) if r.adult]
    grids = await _grids(deps, {r.record.node for r in people})
    addresses = await _addresses(deps, sorted({r.address_id for r in people}))
    if electorate is Electorate.ADULTS:
        chosen = [(r.record, r.address_id) for r in people]
    else:
        households: dict[str, list[Record]] = {}
        for r in sorted(people, key=lambda r: int(r.record.id[1:] or 0)):
            households.setdefault(r.address_id, []).append(r.record)
        chosen = [(_head(members), aid) for aid, members in households.items()]
    return [Voter(secrets.token_hex(8), f"{_name(rec)}（{addresses.get(aid, '')}）",
                  grids[rec.node], aid if electorate is Electorate.HOUSEHOLDS else rec.id)
            for rec, aid in chosen]


def _head(members: list[Record]) -> Record:
    return next((m for m in members if m.fields.get("relation_code") in HEAD_CODES), members[0])


def roll_hash(voters: Sequence[Voter]) -> str:
    """Digest of the roll as published (masked labels, sorted): fixes the electorate's size."""
    lines = sorted(f"{v.vid}\t{v.label}" for v in voters)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
