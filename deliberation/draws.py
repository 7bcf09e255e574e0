"""Draws by lot (抓阄): fix and publish the list first, draw later, let anyone recompute.

1. `create`: participants (the village's households from 一标三实, masked and numbered, or a
   given list) and items are fixed with the committee's commitments, the public value's
   source named in advance and participants' contributions; a fresh secret's SHA-256 is
   published as `seed_commitment`; the whole fixed part gets `list_hash`. Announced in the
   village's groups.
2. committee members `reveal` their values (each must hash to a published commitment); the
   organiser enters the public value once it is known (`public_value`).
3. `run`: the seed and the allocation (lottery.py), the secret, reveals and public value are
   published; `gridbot deliberation verify-draw` and /draw/<id>/verify recompute them.
Who may: the village's officer or its appointed organiser (as for matters); everything audited.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from deliberation import announce, lottery, roll
from deliberation.deps import DelibDeps
from deliberation.models import Electorate, Matter
from deliberation.service import MatterService, Refused, Reply

MAX_PARTICIPANTS, MAX_ITEMS, MAX_LABEL = 2000, 2000, 60
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class DrawDraft:
    village: str
    title: str
    items: tuple[str, ...]
    participants: tuple[str, ...] = ()  # empty: the village's households (masked)
    two_stage: bool = True
    public_source: str = ""  # e.g. "12月10日 深证成指收盘点位"
    commitments: tuple[str, ...] = ()  # SHA-256 hex of each committee member's value
    contributions: tuple[str, ...] = field(default=())


class DrawService:
    def __init__(self, deps: DelibDeps) -> None:
        self.deps = deps
        self.matters = MatterService(deps)

    async def create(self, actor: str, draft: DrawDraft, *, source: str = "") -> Reply:
        async def run() -> Reply:
            village = await self.matters._village(draft.village)
            await self.matters._may_organise(actor, village)
            participants = draft.participants or await self._households(village.code)
            _validate(draft, participants)
            secret = secrets.token_hex(32)
            record: dict[str, Any] = {
                "id": await self.deps.matters.next_id("draw", "ZJ"), "title": draft.title,
                "village": village.code, "participants": list(participants),
                "items": list(draft.items), "two_stage": draft.two_stage,
                "public_source": draft.public_source,
                "commitments": sorted(draft.commitments),
                "contributions": list(draft.contributions),
                "seed_commitment": lottery.sha256(secret), "algorithm": lottery.VERSION}
            record.update(list_hash=lottery.list_hash(record), status="published",
                          created_at=self.deps.now(), organiser=actor, reveals=[],
                          village_name=village.name)
            await self.deps.draws.save(record, secret)
            await self._announce(record, _published_text(record))
            return Reply(True, _published_text(record), str(record["id"]), record)
        return await self._audited(actor, "deliberation.draw.create", draft.title, source, run)

    async def reveal(self, actor: str, draw_id: str, value: str, *, source: str = "") -> Reply:
        async def run() -> Reply:
            record, _ = await self._draw(draw_id)
            _must_be(record, "published")
            digest = lottery.sha256(value)
            if digest not in record["commitments"]:
                raise Refused("揭示值与任何一个事先公布的承诺都不符：请核对原值")
            if value not in record["reveals"]:
                record["reveals"] = sorted([*record["reveals"], value])
                await self.deps.draws.update(record)
            left = len(record["commitments"]) - len(record["reveals"])
            return Reply(True, f"抓阄 {draw_id} 已收到揭示值，还差{left}个。", draw_id)
        return await self._audited(actor, "deliberation.draw.reveal", draw_id, source, run)

    async def public_value(self, actor: str, draw_id: str, value: str, *,
                           source: str = "") -> Reply:
        async def run() -> Reply:
            record, _ = await self._draw(draw_id)
            await self._may(actor, record)
            _must_be(record, "published")
            if not record["public_source"]:
                raise Refused("该抓阄事先没有指定公开值来源，不能再加入公开值")
            if not 1 <= len(value.strip()) <= 40:
                raise Refused("公开值：请照实填写公布的数值（1到40个字符）")
            record["public_value"] = value.strip()
            await self.deps.draws.update(record)
            return Reply(True, f"抓阄 {draw_id} 公开值已登记：{value.strip()}", draw_id)
        return await self._audited(actor, "deliberation.draw.public", draw_id, source, run)

    async def run(self, actor: str, draw_id: str, *, source: str = "") -> Reply:
        async def go() -> Reply:
            record, secret = await self._draw(draw_id)
            await self._may(actor, record)
            _must_be(record, "published")
            if len(record["reveals"]) != len(record["commitments"]):
                raise Refused("还有委员会成员没有揭示承诺值，不能开抽")
            if record["public_source"] and not record.get("public_value"):
                raise Refused(f"请先登记公开值（{record['public_source']}）再开抽")
            record["secret"] = secret
            record["seed"] = lottery.derive_seed(record["list_hash"], secret,
                                                 record.get("public_value", ""),
                                                 record["reveals"])
            outcome = lottery.allocate(record["seed"], record["participants"],
                                       record["items"], record["two_stage"])
            record.update(order=list(outcome.order),
                          allocation=[list(p) for p in outcome.allocation],
                          status="drawn", drawn_at=self.deps.now())
            await self.deps.draws.update(record)
            await self._announce(record, _drawn_text(record, self.deps.base_url()))
            return Reply(True, _drawn_text(record, self.deps.base_url()), draw_id, record)
        return await self._audited(actor, "deliberation.draw.run", draw_id, source, go)

    async def published(self, draw_id: str) -> dict[str, Any]:
        record, _ = await self._draw(draw_id)
        return record

    async def _households(self, village: str) -> tuple[str, ...]:
        voters = await roll.snapshot(self.deps.collect, village, Electorate.HOUSEHOLDS)
        labels = sorted(v.label for v in voters)
        return tuple(f"{n:03d} {label}" for n, label in enumerate(labels, 1))

    async def _draw(self, draw_id: str) -> tuple[dict[str, Any], str]:
        found = await self.deps.draws.get(draw_id.strip().upper())
        if found is None:
            raise Refused(f"没有抓阄 {draw_id}：请核对编号（如 ZJ2）")
        return found

    async def _may(self, actor: str, record: dict[str, Any]) -> None:
        village = await self.matters._village(str(record["village"]))
        await self.matters._may_organise(actor, village)

    async def _announce(self, record: dict[str, Any], text: str) -> None:
        stand_in = _stand_in(record)
        await announce.to_groups(self.deps, stand_in, "【抓阄公示】" + text)

    async def _audited(self, actor: str, action: str, target: str, source: str,
                       run: Callable[[], Awaitable[Reply]]) -> Reply:
        return await self.matters._audited(actor, action, target, source, run)


def _stand_in(record: dict[str, Any]) -> Matter:
    """announce.to_groups needs only the village; a minimal matter-shaped carrier."""
    from deliberation.models import DEFAULT_OPTIONS, Body, Mode, Rule

    return Matter(str(record["id"]), str(record["village"]), str(record.get("village_name")),
                  str(record["title"]), "", DEFAULT_OPTIONS, Electorate.HOUSEHOLDS,
                  Body.VILLAGERS, Rule.MAJORITY, Mode.ONLINE, 0.0, 0.0, "", 0.0)


def _must_be(record: dict[str, Any], status: str) -> None:
    if record.get("status") != status:
        raise Refused(f"抓阄 {record['id']} 已开抽，名单、物品和种子都不能再改")


def _validate(draft: DrawDraft, participants: tuple[str, ...]) -> None:
    if not 2 <= len(draft.title.strip()) <= 60:
        raise Refused("标题：请写2到60个字")
    if not 1 <= len(participants) <= MAX_PARTICIPANTS or \
            len(set(participants)) != len(participants):
        raise Refused(f"名单：需要1到{MAX_PARTICIPANTS}个互不相同的参加户")
    if not 1 <= len(draft.items) <= MAX_ITEMS or len(set(draft.items)) != len(draft.items):
        raise Refused(f"物品：需要1到{MAX_ITEMS}个互不相同的物品（如 1-28号地块）")
    if any(not 1 <= len(x) <= MAX_LABEL for x in (*participants, *draft.items)):
        raise Refused(f"名单和物品：每项1到{MAX_LABEL}个字")
    if any(not _HEX64.match(c) for c in draft.commitments):
        raise Refused("承诺值：每个应为64位小写十六进制的SHA-256值")
    if len(draft.contributions) > MAX_PARTICIPANTS or \
            any(len(c) > MAX_LABEL for c in draft.contributions):
        raise Refused(f"附加值：每个不超过{MAX_LABEL}个字符")


def _published_text(record: dict[str, Any]) -> str:
    source = f"\n种子将合并公开值：{record['public_source']}（届时公布）" \
        if record["public_source"] else ""
    committee = f"\n委员会承诺{len(record['commitments'])}个" if record["commitments"] else ""
    stages = "两段（先抽顺序号，再抽物品）" if record["two_stage"] else "一段"
    return (f"抓阄 {record['id']}「{record['title']}」名单已固定："
            f"{len(record['participants'])}户，物品{len(record['items'])}项，{stages}。"
            f"\n名单哈希 {record['list_hash']}\n种子哈希 {record['seed_commitment']}"
            f"{source}{committee}\n开抽后公布种子，任何人可重新计算核对。")


def _drawn_text(record: dict[str, Any], base: str) -> str:
    lines = [f"{n}. {p} → {item}" for n, (p, item) in enumerate(record["allocation"], 1)]
    shown = "\n".join(lines[:10]) + (f"\n……共{len(lines)}项，见核对页" if len(lines) > 10 else "")
    return (f"抓阄 {record['id']}「{record['title']}」结果：\n{shown}\n种子 {record['seed']}\n"
            f"核对：{base}/draw/{record['id']}/verify")
