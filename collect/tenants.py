"""A house's 承租人: person record ids or ID numbers, each must already be a person record."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bot.masking import mask_id_number
from collect.models import RecordKind
from collect.validate import Issue, Severity, check_id_number, normalise_id_number, today

if TYPE_CHECKING:
    from collect.deps import CollectDeps

_SPLIT = re.compile(r"[,，、;；\s]+")
_RECORD_ID = re.compile(r"^[Pp]\d+$")
MAX_TENANTS = 30


def _issue(message: str) -> Issue:
    return Issue("tenants", Severity.ERROR, f"承租人：{message}")


async def resolve_tenants(deps: CollectDeps, values: dict[str, str]) -> tuple[dict[str, str],
                                                                              tuple[Issue, ...]]:
    """`values` with tenants as person record ids, or the issues that stop it."""
    raw = values.get("tenants", "")
    items = [item for item in _SPLIT.split(raw) if item]
    if not items:
        return values, ()
    if len(items) > MAX_TENANTS:
        return values, (_issue(f"最多填写{MAX_TENANTS}人，请分次采集"),)
    ids: list[str] = []
    issues: list[Issue] = []
    for item in items:
        found = await _one(deps, item)
        if isinstance(found, Issue):
            issues.append(found)
        else:
            ids.append(found)
    return {**values, "tenants": ",".join(dict.fromkeys(ids))}, tuple(issues)


async def _one(deps: CollectDeps, item: str) -> str | Issue:
    if _RECORD_ID.match(item):
        record = await deps.store.get(item.upper())
        if record is None or record.kind is not RecordKind.PERSON:
            return _issue(f"找不到人口记录 {item.upper()}，请核对编号")
        return record.id
    number = normalise_id_number(item)
    checked = check_id_number(number, today(deps.clock), "tenants", "承租人")
    if any(i.severity is Severity.ERROR for i in checked.issues):
        return _issue(f"{mask_id_number(number)} 不是有效的身份证号码或人口记录编号，请核对")
    found = await deps.store.lookup(deps.keys.blind("id", deps.blind.digest("id", number)))
    if found is None:
        return _issue(f"{mask_id_number(number)} 尚未登记为实有人口，请先采集 人口 后再填写")
    return found
