"""Broadcast commands, shared by app chat (handlers/broadcast.py), the CLI and the HTTP API.

Who may (documented policy):
- 民警 (Role.OFFICER) issue, confirm, approve and follow up notices, only for targets inside
  the subtree they cover (Registry.covers); confirm/cancel is for the issuer.
- 辅警 (Role.AUXILIARY) may watch progress (进度) inside their subtree but not issue: under the
  2016 辅警 rules auxiliary police act under an officer and have no authority of their own
  to publish police notices.
- 网格员 acknowledge (已转达) a notice that reached their groups; residents and unknown users
  are refused politely. Every command, approval and refusal goes into the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from bot.audit import Outcome
from bot.rtypes import smap
from broadcasts import content, outbox, targets
from broadcasts.deps import Runtime
from broadcasts.engine import release
from broadcasts.grammar import (
    FOLLOW_WORDS,
    FollowUpDraft,
    GrammarError,
    NoticeDraft,
    parse_follow_up,
    parse_notice,
)
from broadcasts.models import (
    Content,
    Notice,
    NoticeKind,
    NoticeStatus,
    PairState,
    PlannedGroup,
    TargetSpec,
)
from broadcasts.plan import Plan, make_plan, plan_groups
from broadcasts.planner import (
    Forecast,
    OwnerOutlook,
    demand_of,
    history_share,
    machine_floor,
    owner_outlook,
    poll_interval,
)
from broadcasts.progress import snapshot
from broadcasts.validate import check_draft
from registry.models import DeliveryKind, Level, Person, Role


class Scheduling(Protocol):
    """Where scheduled notices are put (bot.scheduler through broadcasts.schedule)."""

    def add(self, notice_id: int, at: float) -> None: ...

    def remove(self, notice_id: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to a command: Chinese text for the user, plus data for the HTTP API."""

    ok: bool
    text: str
    notice_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    outcome: str = ""  # ok | refused | error, as audited


class Refused(Exception):
    """Raised inside the service: the actor may not do this; str() is the Chinese reason."""


class BroadcastService:
    """The commands; every public method audits what it did or refused."""

    def __init__(self, rt: Runtime, scheduling: Scheduling | None = None) -> None:
        self.rt = rt
        self.scheduling = scheduling

    # --- 通知 ---------------------------------------------------------------------------
    async def issue(self, actor: str, draft: NoticeDraft, *, source: str = "") -> Reply:
        """Plan a notice; release it at once when small, else preview and wait for 确认."""
        return await self._audited(actor, "broadcast.issue", ",".join(draft.targets), source,
                                   lambda: self._issue(actor, draft))

    async def issue_text(self, actor: str, text: str, *, level_word: str = "",
                         source: str = "") -> Reply:
        """`通知 …` as typed: who may is checked before the grammar, so a resident gets a
        polite refusal rather than a syntax lesson."""
        async def run() -> Reply:
            await self._officer(actor)
            draft = parse_notice(text, self.rt.clock.now(), level_word=level_word)
            return await self._issue(actor, draft)

        return await self._audited(actor, "broadcast.issue", text[:80], source, run)

    async def _issue(self, actor: str, draft: NoticeDraft) -> Reply:
        person = await self._officer(actor)
        check_draft(draft, self.rt.clock.now(), self.rt.config)  # before anything is stored
        resolved = await targets.resolve(self.rt.registry, draft.targets, draft.exclude,
                                         person.nodes)
        await self._must_cover(person, resolved.codes)
        groups = await self.rt.registry.target_groups(resolved.codes, tags=draft.tags,
                                                      exclude=resolved.exclude)
        if not groups:
            return Reply(False, f"「{resolved.label}」范围内没有可发送的居民群。")
        now = self.rt.clock.now()
        notice = Notice(
            id=await self.rt.notices.next_id(), level=draft.level, content=draft.content,
            target=TargetSpec(resolved.codes, draft.tags, resolved.exclude), issuer=actor,
            created_at=now, scheduled_at=draft.schedule_at or 0.0,
            needs_approval=await self._needs_approval(draft, resolved.codes),
            extra={"issuer_label": f"{person.role.label}{person.name}"},
            target_label=resolved.label + _tags_label(draft.tags),
        )
        planned = await plan_groups(self.rt.registry, groups,
                                    self.rt.config.ceilings.chat_ids_per_task)
        self._check_size(notice, planned)
        return await self._store_and_route(notice, planned)

    async def _store_and_route(self, notice: Notice, planned: list[PlannedGroup]) -> Reply:
        plan, forecast = await self._plan(planned)
        notice = notice.with_(extra={**notice.extra, "floor": repr(forecast.floor.seconds)})
        await self.rt.notices.save(notice)
        await self.rt.plans.write(notice.id, plan, self.rt.clock.now())
        data = {"notice_id": notice.id, "groups": len(planned),
                "floor_seconds": forecast.floor.seconds, "problems": forecast.problems}
        needs_confirm = len(planned) > self.rt.config.confirm_threshold_groups
        if needs_confirm:
            text = (f"{notice.title} 预览（{notice.target_label}）\n{forecast.text()}\n"
                    f"回复「确认 {notice.id}」开始发送，「取消 {notice.id}」作废。")
            return Reply(True, text, notice.id, data)
        return await self._after_confirm(notice, data, forecast.text())

    async def _plan(self, planned: list[PlannedGroup]) -> tuple[Plan, Forecast]:
        plan = await make_plan(self.rt.quota, planned, self.rt.clock.now())
        spent = set(plan.initial)
        sendable = [g for g in planned if g.chat_id not in spent]
        return plan, await self.forecast(sendable, tuple(sorted(spent)))

    async def forecast(self, groups: list[PlannedGroup], spent: tuple[str, ...] = ()
                       ) -> Forecast:
        """The planner's forecast for sending to `groups` now."""
        cfg = self.rt.config
        demand = demand_of(groups, cfg.ceilings.chat_ids_per_task)
        used = await self._usage()
        raw = await self.rt.redis.lrange(self.rt.keys.confirm_delays(), 0, -1)
        delays = [float(x) for x in raw]
        _, p90 = history_share(delays, cfg.deadline_seconds)  # the delays of those who did
        outlook = await self._owner_outlook(groups)
        return Forecast(
            demand=demand, floor=machine_floor(demand, cfg.ceilings, used=used),
            deadline=cfg.deadline_seconds, poll_interval=poll_interval(demand.tasks, cfg),
            quota_exhausted=spent, confirm_p90=p90,
            confirm_within=outlook.expected if outlook is not None else None,
            no_officer=sum(1 for g in groups if not g.officers),
            no_supervisor=sum(1 for g in groups if not g.supervisors), owners=outlook,
        )

    async def _owner_outlook(self, groups: list[PlannedGroup]) -> OwnerOutlook | None:
        """Per-owner history of confirming in time, among all tasks each was asked."""
        record = smap(await self.rt.redis.hgetall(self.rt.keys.owner_record()))
        owners = {g.owner for g in groups if g.owner}
        people = await self.rt.registry.people(owners) if record else []
        names = {p.userid: f"{p.name}（{p.userid}）" for p in people}
        return owner_outlook(groups, record, names)

    async def _usage(self) -> dict[str, int]:
        rates = [*self.rt.costs.appchat(1), *self.rt.costs.api("add_msg_template")]
        used = await self.rt.limiter.usage(rates)
        return {r.bucket: u for r, u in zip(rates, used, strict=True)}

    def _check_size(self, notice: Notice, planned: list[PlannedGroup]) -> None:
        kinds = {g.kind for g in planned}
        problem = content.size_problem(
            notice, groups=bool(kinds & {DeliveryKind.APPCHAT, DeliveryKind.WEBHOOK}),
            tasks=DeliveryKind.CUSTOMER_GROUP in kinds)
        if problem:
            raise GrammarError(problem)

    async def _needs_approval(self, draft: NoticeDraft, codes: tuple[str, ...]) -> bool:
        """City-wide 协查通报 needs a second officer (settings.broadcast.two_person_approval)."""
        if not self.rt.config.two_person_approval or draft.level.value != "assist":
            return False
        nodes = await self.rt.registry.nodes(list(codes))
        return any(n is not None and n.level is Level.CITY for n in nodes)

    # --- 确认 / 批准 / 取消 ---------------------------------------------------------------
    async def confirm(self, actor: str, notice_id: int, *, source: str = "") -> Reply:
        """The issuer confirms a previewed notice."""
        return await self._audited(actor, "broadcast.confirm", f"#{notice_id}", source,
                                   lambda: self._confirm(actor, notice_id))

    async def _confirm(self, actor: str, notice_id: int) -> Reply:
        notice = await self._notice(notice_id)
        if notice.issuer != actor:
            raise Refused(f"通知 #{notice_id} 不是您发布的，只有发布人可以确认。")
        if notice.status is not NoticeStatus.PENDING_CONFIRM:
            return Reply(False, f"通知 #{notice_id} 当前{notice.status.label}，无需确认。",
                         notice_id)
        return await self._after_confirm(notice, {"notice_id": notice_id})

    async def _after_confirm(self, notice: Notice, data: dict[str, Any], lead: str = "") -> Reply:
        lead = lead + "\n" if lead else ""
        if notice.needs_approval and not notice.approver:
            moved = await self.rt.notices.move(notice.id, [NoticeStatus.PENDING_CONFIRM],
                                               NoticeStatus.PENDING_APPROVAL)
            asked = await self._ask_approvers(notice) if moved else ""
            return Reply(True, f"{lead}{notice.title} 为全市协查通报，需另一位民警发送「批准 "
                               f"{notice.id}」后才会发出。{asked}", notice.id, data)
        if notice.scheduled_at:
            return await self._schedule(notice, data, lead)
        if not await release(self.rt, notice, self.rt.clock.now()):
            return Reply(False, f"通知 #{notice.id} 已在发送或已处理。", notice.id, data)
        return Reply(True, f"{lead}{notice.title} 已开始发送，10 分钟时限报告和结束报告将发给您；"
                           f"随时发送「进度 {notice.id}」查看。", notice.id, data)

    async def _ask_approvers(self, notice: Notice) -> str:
        """Send the request to every other officer who may approve (covers the whole target);
        the issuer's reply names them. Durable messages (outbox), posted once per officer."""
        approvers = await self._approvers(notice)
        if not approvers:
            return "\n注意：没有其他可批准此通知的民警登记在册，请联系管理员。"
        issuer = await self.rt.registry.person(notice.issuer)
        who = f"{issuer.name}（{notice.issuer}）" if issuer else notice.issuer
        text = (f"【待批准】{who}发布的{notice.title}（{notice.target_label}）需您批准后才会发出。"
                f"\n内容：{notice.content.text[:300]}\n回复「批准 {notice.id}」即可开始发送。")
        for person in approvers:
            await outbox.post(self.rt, notice.id, f"approve:{person.userid}", person.userid,
                              [text], "approve")
        names = "、".join(f"{p.name}（{p.userid}）" for p in approvers)
        return f"\n已请以下民警批准：{names}。"

    async def _approvers(self, notice: Notice) -> list[Person]:
        officers = await self.rt.registry.people_with_role(Role.OFFICER)
        out = []
        for person in sorted(officers, key=lambda p: p.userid):
            if person.userid == notice.issuer:
                continue
            if all([await self.rt.registry.covers(person.userid, c)
                    for c in notice.target.codes]):
                out.append(person)
        return out

    async def _schedule(self, notice: Notice, data: dict[str, Any], lead: str) -> Reply:
        if self.scheduling is None:
            return Reply(False, "定时发送在此进程不可用（调度器未启动），请直接发送或联系管理员。",
                         notice.id, data)
        if not await self.rt.notices.move(notice.id, [NoticeStatus.PENDING_CONFIRM,
                                                      NoticeStatus.PENDING_APPROVAL],
                                          NoticeStatus.SCHEDULED):
            return Reply(False, f"通知 #{notice.id} 已处理。", notice.id, data)
        self.scheduling.add(notice.id, notice.scheduled_at)
        when = _beijing(notice.scheduled_at)
        return Reply(True, f"{lead}{notice.title} 已定时，将于 {when} 发出"
                           f"（届时按最新名单重新计算）。「取消 {notice.id}」可撤销。",
                     notice.id, data)

    async def approve(self, actor: str, notice_id: int, *, source: str = "") -> Reply:
        """A second officer covering the whole target approves a city-wide 协查通报."""
        return await self._audited(actor, "broadcast.approve", f"#{notice_id}", source,
                                   lambda: self._approve(actor, notice_id))

    async def _approve(self, actor: str, notice_id: int) -> Reply:
        person = await self._officer(actor)
        notice = await self._notice(notice_id)
        if notice.issuer == actor:
            raise Refused("批准须由另一位民警完成，发布人不能批准自己的通知。")
        await self._must_cover(person, notice.target.codes)
        if notice.status is not NoticeStatus.PENDING_APPROVAL:
            return Reply(False, f"通知 #{notice_id} 当前{notice.status.label}，无需批准。",
                         notice_id)
        await self.rt.notices.set_fields(notice_id, {"approver": actor})
        return await self._after_confirm(notice.with_(approver=actor), {"notice_id": notice_id},
                                         f"已批准 {notice.title}。")

    async def cancel(self, actor: str, notice_id: int, *, source: str = "") -> Reply:
        """The issuer withdraws a notice not yet sending (use 撤回 once it is)."""
        return await self._audited(actor, "broadcast.cancel", f"#{notice_id}", source,
                                   lambda: self._cancel(actor, notice_id))

    async def _cancel(self, actor: str, notice_id: int) -> Reply:
        notice = await self._notice(notice_id)
        if notice.issuer != actor:
            raise Refused(f"通知 #{notice_id} 不是您发布的，不能取消。")
        moved = await self.rt.notices.move(
            notice_id, [NoticeStatus.PENDING_CONFIRM, NoticeStatus.PENDING_APPROVAL,
                        NoticeStatus.SCHEDULED], NoticeStatus.CANCELLED)
        if not moved:
            return Reply(False, f"通知 #{notice_id} 已在发送，"
                                f"如需收回请用「撤回 {notice_id} 原因」。", notice_id)
        if self.scheduling is not None and notice.status is NoticeStatus.SCHEDULED:
            self.scheduling.remove(notice_id)
        return Reply(True, f"通知 #{notice_id} 已取消，不会发出。", notice_id)

    # --- 更新 / 撤回 / 已破案 ---------------------------------------------------------------
    async def follow_up(self, actor: str, draft: FollowUpDraft, *, source: str = "") -> Reply:
        """A follow-up to exactly the groups the original reached (same channels)."""
        return await self._audited(actor, f"broadcast.{draft.kind.value}", f"#{draft.notice_id}",
                                   source, lambda: self._follow_up(actor, draft))

    async def follow_up_text(self, actor: str, word: str, text: str, *,
                             source: str = "") -> Reply:
        """`更新 17 …` / `撤回 17 …` / `已破案 17 …` as typed."""
        async def run() -> Reply:
            await self._officer(actor)
            return await self._follow_up(actor, parse_follow_up(word, text))

        return await self._audited(actor, f"broadcast.{FOLLOW_WORDS[word].value}", text[:40],
                                   source, run)

    async def _follow_up(self, actor: str, draft: FollowUpDraft) -> Reply:
        person = await self._officer(actor)
        parent = await self._notice(draft.notice_id)
        if parent.kind is not NoticeKind.ORIGINAL:
            raise GrammarError(f"#{parent.id} 本身是后续通知，请对原通知 #{parent.parent} 操作。")
        await self._must_cover(person, parent.target.codes)
        if parent.status not in (NoticeStatus.SENDING, NoticeStatus.SETTLED):
            return Reply(False, f"通知 #{parent.id} 尚未发出（{parent.status.label}），"
                                f"请用「取消 {parent.id}」。", parent.id)
        if draft.kind is NoticeKind.UPDATE and not draft.text:
            raise GrammarError(f"请写更新内容，例如：更新 {parent.id} 嫌疑人已换乘白色轿车")
        notice = Notice(
            id=await self.rt.notices.next_id(), level=parent.level, content=Content(draft.text),
            target=parent.target, issuer=actor, created_at=self.rt.clock.now(),
            kind=draft.kind, parent=parent.id, target_label=f"同原通知 #{parent.id} 的接收群",
            extra={"issuer_label": f"{person.role.label}{person.name}"},
        )
        planned = await self._parent_recipients(parent.id)
        self._check_size(notice, planned)
        await self.rt.notices.add_followup(parent.id, notice.id)
        plan, forecast = await self._plan(planned)
        notice = notice.with_(extra={**notice.extra, "floor": repr(forecast.floor.seconds)})
        await self.rt.notices.save(notice)
        await self.rt.plans.write(notice.id, plan, self.rt.clock.now())
        await release(self.rt, notice, self.rt.clock.now())
        return Reply(True, f"{notice.title} 已开始发送到原通知送达的 {len(planned)} 个群"
                           f"（原通知仍在等待的群，确认送达后再发）。", notice.id,
                     {"notice_id": notice.id, "groups": len(planned)})

    async def _parent_recipients(self, parent_id: int) -> list[PlannedGroup]:
        """Groups the original reached or may still reach; failed/uncertain ones are left out
        (a still-pending group is gated by the workers on the original's outcome)."""
        groups = await self.rt.plans.groups(parent_id)
        pairs = await self.rt.state.pairs(parent_id)
        return [g for c, g in sorted(groups.items())
                if c in pairs and pairs[c].state not in
                (PairState.FAILED, PairState.UNCERTAIN, PairState.SKIPPED)]

    # --- 进度 / 已转达 ---------------------------------------------------------------------
    async def progress(self, actor: str, notice_id: int | None, *, source: str = "") -> Reply:
        """Progress of a notice, for police covering its target."""
        return await self._audited(actor, "broadcast.progress", f"#{notice_id or ''}", source,
                                   lambda: self._progress(actor, notice_id))

    async def _progress(self, actor: str, notice_id: int | None) -> Reply:
        if notice_id is None:
            await self._viewer(actor)
            latest = await self.rt.notices.latest_of(actor)
            if not latest:
                return Reply(False, "您还没有发布过通知。请写「进度 编号」。")
            notice_id = latest[0]
        notice = await self._viewable(actor, notice_id)
        snap = await snapshot(self.rt, notice_id)
        assert snap is not None
        counts = {s.value: n for s, n in snap.counts().items()}
        return Reply(True, snap.text(), notice_id, {"status": notice.status.value,
                                                    "counts": counts, "total": snap.total,
                                                    "in_time": snap.in_time()})

    async def may_view(self, actor: str, notice_id: int, *, source: str = "") -> Reply:
        """The 进度 rule without building the progress text (the console renders its own
        view of the same snapshot); audited as a progress view."""
        async def run() -> Reply:
            notice = await self._viewable(actor, notice_id)
            return Reply(True, notice.title, notice_id)

        return await self._audited(actor, "broadcast.progress", f"#{notice_id}", source, run)

    async def _viewer(self, actor: str) -> Person:
        person = await self._person(actor)
        if not person.is_police:
            raise Refused("只有民警、辅警可以查看通知进度。")
        return person

    async def _viewable(self, actor: str, notice_id: int) -> Notice:
        person = await self._viewer(actor)
        notice = await self._notice(notice_id)
        if notice.issuer != actor:
            await self._must_cover(person, notice.target.codes)
        return notice

    async def acknowledge(self, actor: str, notice_id: int, *, source: str = "") -> Reply:
        """已转达: a grid worker says they passed the notice on (e.g. forwarded it by hand)."""
        return await self._audited(actor, "broadcast.ack", f"#{notice_id}", source,
                                   lambda: self._acknowledge(actor, notice_id))

    async def _acknowledge(self, actor: str, notice_id: int) -> Reply:
        person = await self._person(actor)
        notice = await self._notice(notice_id)
        groups = await self.rt.plans.groups(notice_id)
        owns = any(g.owner == actor for g in groups.values())
        covers = False
        for code in {g.node for g in groups.values()}:
            if await self.rt.registry.covers(actor, code):
                covers = True
                break
        if person.role is not Role.GRID_WORKER or not (owns or covers):
            raise Refused(f"只有通知 #{notice_id} 所涉网格的网格员可以回复「已转达」。")
        await self.rt.redis.hset(self.rt.keys.acks(notice_id), actor,
                                 repr(self.rt.clock.now()))
        return Reply(True, f"已记录：您已转达 {notice.title}，谢谢！", notice_id)

    # --- helpers ---------------------------------------------------------------------------
    async def _audited(self, actor: str, action: str, target: str, source: str,
                       run: Any) -> Reply:
        try:
            reply: Reply = await run()
        except Refused as refusal:
            await self.rt.audit.record(actor, action, "refused", target=target,
                                       detail=str(refusal), source=source)
            return Reply(False, str(refusal), outcome="refused")
        except GrammarError as error:
            await self.rt.audit.record(actor, action, "error", target=target, detail=str(error),
                                       source=source)
            return Reply(False, str(error), outcome="error")
        outcome: Outcome = "ok" if reply.ok else "error"
        await self.rt.audit.record(actor, action, outcome, target=target,
                                   detail=reply.text[:200], source=source)
        return replace(reply, outcome=outcome)

    async def _person(self, actor: str) -> Person:
        person = await self.rt.registry.person(actor)
        if person is None:
            raise Refused("抱歉，您不在网格警务人员名单中，无法使用此功能。如需报警请拨打 110。")
        return person

    async def _officer(self, actor: str) -> Person:
        person = await self._person(actor)
        if person.role is not Role.OFFICER:
            raise Refused("抱歉，只有民警可以发布、确认或批准警务通知"
                          f"（您的身份：{person.role.label}）。")
        return person

    async def _must_cover(self, person: Person, codes: tuple[str, ...]) -> None:
        for code in codes:
            if not await self.rt.registry.covers(person.userid, code):
                node = await self.rt.registry.node(code)
                name = node.name if node else code
                raise Refused(f"抱歉，「{name}」不在您负责的辖区内，不能对其发布或操作通知。")

    async def _notice(self, notice_id: int) -> Notice:
        notice = await self.rt.notices.get(notice_id)
        if notice is None:
            raise GrammarError(f"找不到通知 #{notice_id}。")
        return notice


def _tags_label(tags: tuple[str, ...]) -> str:
    return f"（标签：{'、'.join(tags)}）" if tags else ""


def _beijing(at: float) -> str:
    from datetime import datetime

    from broadcasts.quota import BEIJING

    return datetime.fromtimestamp(at, tz=BEIJING).strftime("%Y-%m-%d %H:%M")
