"""Small helpers shared by the collect tests."""

from __future__ import annotations

from collect.deps import CollectDeps
from collect.models import Record


async def person_by_id(deps: CollectDeps, number: str) -> Record | None:
    found = await deps.store.lookup(deps.keys.blind("id", deps.blind.digest("id", number)))
    return await deps.store.get(found) if found else None


async def unit_by_code(deps: CollectDeps, code: str) -> Record | None:
    found = await deps.store.lookup(deps.keys.uscc(code))
    return await deps.store.get(found) if found else None


def masked_id(number: str) -> str:
    return number[:4] + "*" * 10 + number[-4:]
