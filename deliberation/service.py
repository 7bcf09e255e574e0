"""Who may do what with matters, audited (ok and refused alike): the one entry point that
chat, CLI and the voting page call.

* open (议题): the village's 民警 (Role.OFFICER covering the village) or an organiser the
  officer appointed for that village who is also staff bound to the village;
* appoint (指定组织者): the village's officer;
* status / close early (结束): the matter's organiser or the village's officer — while open
  they see the running turnout only, never a count or who voted what;
* show of hands (举手表决): a grid worker of the village, the organiser or the officer,
  on a 举手表决 matter;
* vote: whoever holds a voter's signed link (checked in constant time).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.audit import Outcome
from deliberation import announce, chain, links, roll, rules, texts
from deliberation.deps import DelibDeps
from deliberation.models import (
    DEFAULT_OPTIONS,
    Body,
    Electorate,
    Matter,
    Mode,
    Rule,
    Status,
    Tally,
)
from registry.models import Level, Node, Person, Role

T = TypeVar("T")
MAX_TITLE, MAX_BACKGROUND, MAX_OPTION, MAX_OPTIONS = 60, 300, 20, 8
MAX_OPEN_DAYS = 60
FINALISE_SECONDS = 120.0  # simulated; a counter that died is replaced after this


class Refused(Exception):
    """The request is refused; str() is the Chinese answer (audited by the service)."""


@dataclass(frozen=True, slots=True)
class MatterDraft:
    village: str  # name, path or code
    title: str
    background: str = ""
    options: tuple[str, ...] = DEFAULT_OPTIONS
    electorate: Electorate = Electorate.HOUSEHOLDS
    body: Body = Body.VILLAGERS
    rule: Rule = Rule.MAJORITY
    mode: Mode = Mode.ONLINE
    opens_at: float | None = None  # None: now
    closes_at: float | None = None  # None: opens + 3 days
    allow_change: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    ok: bool
    text: str
    matter_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VoteResult:
    ok: bool
    message: str
    receipt: str = ""


class MatterService:
    def __init__(self, deps: DelibDeps) -> None:
        self.deps = deps

    # --- opening ------------------------------------------------------------------------
    async def open(self, actor: str, draft: MatterDraft, *, source: str = "") -> Reply:
        return await self._audited(actor, "deliberation.open", draft.title[:40], source,
                                   lambda: self._open(actor, draft))

    async def _open(self, actor: str, draft: MatterDraft) -> Reply:
        village = await self._village(draft.village)
        await self._may_organise(actor, village)
        now = self.deps.now()
        opens = max(now, draft.opens_at or now)
        closes = draft.closes_at or opens + 3 * 86400
        _validate(draft, opens, closes)
        voters = await roll.snapshot(self.deps.collect, village.code, draft.electorate)
        if not voters:
            raise Refused(f"{village.name}在一标三实中没有可表决的{draft.electorate.label}"
                          "记录：请先完成人口采集")
        matter = Matter(
            id=await self.deps.matters.next_id("matter", "YT"), village=village.code,
            village_name=village.name, title=draft.title, background=draft.background,
            options=draft.options, electorate=draft.electorate, body=draft.body,
            rule=draft.rule, mode=draft.mode, opens_at=opens, closes_at=closes,
            organiser=actor, created_at=now, allow_change=draft.allow_change,
            status=Status.OPEN if opens <= now else Status.SCHEDULED, eligible=len(voters),
            roll_hash=roll.roll_hash(voters))
        who = {links.who(self.deps.link_key, matter.id, v.who): v.vid for v in voters if v.who}
        await self.deps.matters.create(matter, voters, who)
        if matter.status is Status.SCHEDULED:
            await self.deps.matters.due_add("open", matter.id, opens)
        await self.deps.matters.due_add("close", matter.id, closes)
        workers = await self._announce_open(matter)
        warning = "\n注意：没有网格员收到表决链接（本村网格未配网格员），请先配齐再发起。" \
            if workers == 0 and matter.status is Status.OPEN and matter.mode is Mode.ONLINE \
            else ""
        return Reply(True, texts.opened(matter) + warning, matter.id,
                     {"eligible": matter.eligible, "roll_hash": matter.roll_hash,
                      "workers": workers})

    async def _announce_open(self, matter: Matter) -> int:
        """Notice to the groups; links to the grid workers now if open: how many got them."""
        notice = await announce.to_groups(self.deps, matter, texts.notice_open(matter))
        if notice is not None:
            await self.deps.matters.save_fields(
                matter.with_(notice_ids=(*matter.notice_ids, notice)), "notice_ids")
        if matter.status is not Status.OPEN:
            return -1
        return await announce.links_to_workers(self.deps, matter,
                                               await self.deps.matters.roll(matter.id))

    async def start(self, matter_id: str) -> bool:
        """A scheduled matter reaches its opening time (any process; fires once)."""
        if not await self.deps.matters.transition(matter_id, Status.SCHEDULED, Status.OPEN):
            return False
        matter = await self._matter(matter_id)
        await self.deps.record("system", "deliberation.start", "ok", target=matter_id)
        await announce.links_to_workers(self.deps, matter,
                                        await self.deps.matters.roll(matter.id))
        return True

    async def appoint(self, actor: str, village_name: str, userid: str, *,
                      source: str = "") -> Reply:
        async def run() -> Reply:
            village = await self._village(village_name)
            officer = await self._person(actor)
            if officer.role is not Role.OFFICER or \
                    not await self.deps.registry.covers(actor, village.code):
                raise Refused(f"只有负责{village.name}的民警可以指定议事组织者")
            person = await self.deps.registry.person(userid)
            if person is None or not await self._bound(person, village):
                raise Refused(f"{userid} 不是{village.name}的在册工作人员：组织者须是本村"
                              "（或其网格）的工作人员")
            await self.deps.matters.appoint(village.code, userid)
            return Reply(True, f"已指定{person.name}为{village.name}的议事组织者。")
        return await self._audited(actor, "deliberation.appoint", userid, source, run)

    # --- voting -------------------------------------------------------------------------
    async def ballot_view(self, matter_id: str, token: str, *,
                          source: str = "") -> tuple[Matter, bool]:
        """The matter a link opens and whether this voter has voted (LinkError / Refused,
        both audited)."""
        try:
            return await self._ballot_view(matter_id, token)
        except (links.LinkError, Refused) as error:
            await self.refused_vote(matter_id, str(error), source)
            raise

    async def refused_vote(self, matter_id: str, message: str, source: str) -> None:
        await self.deps.record(f"voter@{matter_id[:12]}", "deliberation.vote", "refused",
                               target=matter_id[:12], detail=message, source=source)

    async def _ballot_view(self, matter_id: str, token: str) -> tuple[Matter, bool]:
        matter = await self.deps.matters.get(matter_id)
        if matter is None:
            raise links.LinkError("链接无效：没有这个议题")
        vid = links.check_vote(self.deps.link_key, matter.id, token)
        if await self.deps.matters.voter(matter.id, vid) is None:
            raise Refused("您不在本议题的表决名单中（名单按本村一标三实登记生成）")
        voted = await self.deps.matters.has_voted(
            matter.id, links.slot(self.deps.link_key, matter.id, vid))
        return matter, voted

    async def vote(self, matter_id: str, token: str, option: int, *,
                   source: str = "") -> VoteResult:
        actor = f"voter@{matter_id}"
        try:
            matter = await self.deps.matters.get(matter_id)
            if matter is None:
                raise links.LinkError("链接无效：没有这个议题")
            vid = links.check_vote(self.deps.link_key, matter.id, token)
        except links.LinkError as error:
            await self.deps.record(actor, "deliberation.vote", "refused", target=matter_id,
                                   detail=str(error), source=source)
            return VoteResult(False, str(error))
        secret = secrets.token_hex(8)
        status, seq = await self.deps.matters.cast(
            matter.id, vid, links.slot(self.deps.link_key, matter.id, vid),
            chain.receipt_tag(secret), option, self.deps.now())
        message = texts.VOTE_ANSWERS[status]
        ok = status in ("ok", "changed")
        await self.deps.record(actor, "deliberation.vote", "ok" if ok else "refused",
                               target=matter.id, detail=status, source=source)
        if not ok:
            return VoteResult(False, message)
        return VoteResult(True, message, str(chain.Receipt(matter.id, seq, secret)))

    async def record_hands(self, actor: str, matter_id: str, present: int,
                           counts: tuple[int, ...], *, source: str = "") -> Reply:
        async def run() -> Reply:
            matter = await self._matter(matter_id)
            person = await self._person(actor)
            if not (person.role is Role.GRID_WORKER and await self._bound(
                    person, await self._village(matter.village))) and \
                    not await self._may_manage(actor, matter):
                raise Refused("只有本村网格员、议题组织者或负责民警可以登记举手表决")
            if matter.mode is not Mode.HANDS:
                raise Refused(f"{matter.id} 是网上表决议题，不能登记举手结果")
            _check_hands(matter, present, counts)
            status, _ = await self.deps.matters.record_hands(matter.id, counts, present)
            if status != "ok":
                raise Refused(texts.HANDS_ANSWERS[status])
            return _result_reply(await self.finalise(matter.id, by=actor))
        return await self._audited(actor, "deliberation.hands", matter_id, source, run)

    # --- status, closing, results ---------------------------------------------------------
    async def status(self, actor: str, matter_id: str, *, source: str = "") -> Reply:
        async def run() -> Reply:
            matter = await self._matter(matter_id)
            if not await self._may_manage(actor, matter):
                raise Refused("只有议题组织者和本村负责民警可以查看进度")
            if matter.status is Status.CLOSED:
                matter = await self.finalise(matter.id, by=matter.closed_by or "system")
                return _result_reply(matter)
            turnout = await self.deps.matters.turnout(matter.id)
            return Reply(True, texts.turnout(matter, turnout), matter.id,
                         {"turnout": turnout, "eligible": matter.eligible})
        return await self._audited(actor, "deliberation.status", matter_id, source, run)

    async def close(self, actor: str, matter_id: str, *, source: str = "") -> Reply:
        async def run() -> Reply:
            matter = await self._matter(matter_id)
            if actor != "system" and not await self._may_manage(actor, matter):
                raise Refused("只有议题组织者和本村负责民警可以结束表决")
            if not await self.deps.matters.transition(matter.id, Status.OPEN, Status.CLOSED):
                raise Refused(f"{matter.id} 当前{matter.status.label}，不能结束")
            return _result_reply(await self.finalise(matter.id, by=actor))
        return await self._audited(actor, "deliberation.close", matter_id, source, run)

    async def extend(self, actor: str, matter_id: str, closes_at: float, *,
                     source: str = "") -> Reply:
        """延期: a later closing time (never earlier: ballots already cast keep their rules)."""
        async def run() -> Reply:
            matter = await self._matter(matter_id)
            if not await self._may_manage(actor, matter):
                raise Refused("只有议题组织者和本村负责民警可以修改议题")
            if matter.status not in (Status.OPEN, Status.SCHEDULED):
                raise Refused(f"{matter.id} 当前{matter.status.label}，不能延期")
            if closes_at <= matter.closes_at:
                raise Refused(f"截止时间：只能延后（现为{texts.when(matter.closes_at)}）")
            if closes_at - matter.opens_at > MAX_OPEN_DAYS * 86400:
                raise Refused(f"截止时间：表决期不超过{MAX_OPEN_DAYS}天")
            changed = matter.with_(closes_at=closes_at)
            await self.deps.matters.save_fields(changed, "closes_at")
            await self.deps.matters.due_add("close", matter.id, closes_at)
            text = f"议题 {matter.id}「{matter.title}」截止时间延至{texts.when(closes_at)}。"
            await announce.to_groups(self.deps, changed, "【说事议事】" + text)
            return Reply(True, text, matter.id)
        return await self._audited(actor, "deliberation.change", matter_id, source, run)

    async def cancel(self, actor: str, matter_id: str, reason: str, *,
                     source: str = "") -> Reply:
        """撤销: the matter ends without a result; ballots cast are never counted or shown."""
        async def run() -> Reply:
            matter = await self._matter(matter_id)
            if not await self._may_manage(actor, matter):
                raise Refused("只有议题组织者和本村负责民警可以撤销议题")
            if not 2 <= len(reason.strip()) <= 100:
                raise Refused("撤销原因：请写2到100个字，如 议题 撤销 YT3 选项有误，重新发起")
            if not any([await self.deps.matters.transition(matter.id, old, Status.CANCELLED)
                        for old in (Status.OPEN, Status.SCHEDULED)]):
                raise Refused(f"{matter.id} 当前{matter.status.label}，不能撤销")
            text = f"议题 {matter.id}「{matter.title}」已撤销：{reason.strip()}"
            await announce.to_groups(self.deps, matter, "【说事议事】" + text)
            return Reply(True, text, matter.id)
        return await self._audited(actor, "deliberation.cancel", matter_id, source, run)

    async def finalise(self, matter_id: str, *, by: str) -> Matter:
        """Count a closed matter, chain its entries and announce the result (idempotent)."""
        matter = await self._matter(matter_id)
        if matter.result or matter.status is not Status.CLOSED:
            return matter
        if not await self.deps.redis.set(self.deps.keys.finalising(matter.id), by, nx=True,
                                         px=self.deps.clock.real_ms(FINALISE_SECONDS)):
            return matter  # another process is counting it (or died: retried after expiry)
        entries = await self.deps.matters.entries(matter.id)
        present, counts = chain.count(entries, len(matter.options))
        hashes = chain.hashes(matter.id, matter.roll_hash, entries)
        head = hashes[-1] if hashes else chain.genesis(matter.id, matter.roll_hash)
        quorum = rules.quorum_met(matter.body, matter.electorate, matter.eligible, present)
        tally = Tally(matter.mode, matter.eligible, present, counts, quorum,
                      rules.adopted(matter.rule, counts, present, matter.eligible,
                                    matter.options), len(entries), head)
        await self.deps.matters.write_hashes(matter.id, hashes)
        matter = matter.with_(result=tally.to_dict(), closed_by=by)
        await self.deps.matters.save_fields(matter, "result", "closed_by")
        await self.deps.record(by, "deliberation.result", "ok", target=matter.id,
                               detail=f"到会{present}/{matter.eligible} 链头{head[:16]}")
        notice = await announce.to_groups(self.deps, matter, texts.notice_result(matter))
        if notice is not None:
            matter = matter.with_(notice_ids=(*matter.notice_ids, notice))
            await self.deps.matters.save_fields(matter, "notice_ids")
        return matter

    async def published(self, matter_id: str) -> dict[str, Any]:
        """What anyone may check after closing: entries, head, counts (no voter named)."""
        matter = await self._matter(matter_id)
        if matter.status is not Status.CLOSED or not matter.result:
            raise Refused(f"{matter.id} 尚未结束，选票记录在结束后公布")
        return {"matter": matter.id, "title": matter.title, "options": list(matter.options),
                "roll_hash": matter.roll_hash, "eligible": matter.eligible,
                "entries": await self.deps.matters.entries(matter.id),
                "head": matter.result["head"], "result": matter.result}

    async def check_receipt(self, text: str) -> chain.Inclusion:
        receipt = chain.Receipt.parse(text)
        if receipt is None:
            return chain.Inclusion(False, False, -1, "回执格式不对：应为 议题编号-票号-校验码")
        try:
            record = await self.published(receipt.matter)
        except Refused as error:
            return chain.Inclusion(False, False, -1, str(error))
        return chain.prove(receipt, record["matter"], record["roll_hash"], record["entries"],
                           record["head"])

    async def verify_stored(self, matter_id: str) -> bool:
        """True when the stored entries still give the stored hashes and published head."""
        matter = await self._matter(matter_id)
        entries = await self.deps.matters.entries(matter.id)
        recomputed = chain.hashes(matter.id, matter.roll_hash, entries)
        head = recomputed[-1] if recomputed else chain.genesis(matter.id, matter.roll_hash)
        return recomputed == await self.deps.matters.stored_hashes(matter.id) and \
            head == matter.result.get("head")

    # --- helpers --------------------------------------------------------------------------
    async def _audited(self, actor: str, action: str, target: str, source: str,
                       run: Callable[[], Awaitable[Reply]]) -> Reply:
        try:
            reply = await run()
        except Refused as error:
            await self.deps.record(actor, action, "refused", target=target, detail=str(error),
                                   source=source)
            return Reply(False, str(error))
        outcome: Outcome = "ok" if reply.ok else "refused"
        await self.deps.record(actor, action, outcome, target=reply.matter_id or target,
                               detail=reply.text[:120], source=source)
        return reply

    async def _matter(self, matter_id: str) -> Matter:
        matter = await self.deps.matters.get(matter_id.strip().upper())
        if matter is None:
            raise Refused(f"没有议题 {matter_id}：请核对编号（如 YT3）")
        return matter

    async def _person(self, userid: str) -> Person:
        person = await self.deps.registry.person(userid)
        if person is None:
            raise Refused("您不在工作人员名册中，不能使用说事议事功能")
        return person

    async def _village(self, name: str) -> Node:
        wanted = name.strip()
        node = await self.deps.registry.node(wanted)
        found = [node] if node else await self.deps.registry.find_nodes(wanted)
        villages = [n for n in found if n.level is Level.VILLAGE]
        if len(villages) != 1:
            raise Refused(f"村：找不到唯一的村（社区）「{wanted}」，请写村名全称或 上级/村名")
        return villages[0]

    async def _bound(self, person: Person, village: Node) -> bool:
        for node in person.nodes:
            if node == village.code or await self.deps.registry.is_within(node, village.code):
                return True
        return False

    async def _may_organise(self, actor: str, village: Node) -> None:
        person = await self._person(actor)
        if person.role is Role.OFFICER and await self.deps.registry.covers(actor, village.code):
            return
        if await self.deps.matters.is_organiser(village.code, actor) and \
                await self._bound(person, village):
            return
        raise Refused(f"只有负责{village.name}的民警或其指定的本村议事组织者可以发起议题")

    async def _may_manage(self, actor: str, matter: Matter) -> bool:
        if actor == matter.organiser:
            return True
        person = await self.deps.registry.person(actor)
        return person is not None and person.role is Role.OFFICER and \
            await self.deps.registry.covers(actor, matter.village)


def _result_reply(matter: Matter) -> Reply:
    if not matter.result:
        return Reply(True, f"议题 {matter.id} 已结束，正在计票，"
                           f"请稍后发「议题 进度 {matter.id}」查看。", matter.id)
    return Reply(True, texts.result(matter), matter.id, matter.result)


def _validate(draft: MatterDraft, opens: float, closes: float) -> None:
    if not 2 <= len(draft.title.strip()) <= MAX_TITLE:
        raise Refused(f"标题：请写2到{MAX_TITLE}个字")
    if len(draft.background) > MAX_BACKGROUND:
        raise Refused(f"说明：不超过{MAX_BACKGROUND}个字")
    options = draft.options
    if not 2 <= len(options) <= MAX_OPTIONS or len(set(options)) != len(options) or \
            any(not 1 <= len(o) <= MAX_OPTION for o in options):
        raise Refused(f"选项：请给2到{MAX_OPTIONS}个互不相同的选项，每个不超过{MAX_OPTION}个字，"
                      "用、分隔")
    if closes <= opens:
        raise Refused("截止时间：须晚于开始时间")
    if closes - opens > MAX_OPEN_DAYS * 86400:
        raise Refused(f"截止时间：表决期不超过{MAX_OPEN_DAYS}天")


def _check_hands(matter: Matter, present: int, counts: tuple[int, ...]) -> None:
    if len(counts) != len(matter.options):
        raise Refused(f"举手结果：请按顺序给出 {'、'.join(matter.options)} 各自的人数")
    if not 0 < present <= matter.eligible:
        raise Refused(f"到会：应在1到{matter.eligible}之间（本议题名单{matter.eligible}"
                      f"{matter.electorate.unit}）")
    if any(c < 0 for c in counts) or sum(counts) > present:
        raise Refused(f"举手结果：各选项人数之和（{sum(counts)}）不能超过到会人数（{present}）")
