"""Who may do what with a case, audited (ok and refused alike): the one entry point that chat,
the CLI, the console and the clocks all call.

Every method names the acting member's WeCom userid. A case number that does not exist and
one the actor may not see get the same answer (the refusal does not tell whether it exists),
and both are audited as refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.masking import mask_name, mask_phone, scrub
from bot.rtypes import text as rtext
from cases import access, clocks, kfsend, notify, texts
from cases.classify import category_named, kind_for, split_node, suggest_category, suggest_urgency
from cases.deps import CasesDeps
from cases.models import (
    OUTCOMES,
    ROUTES,
    SATISFACTION,
    SETTLE_LEVELS,
    Case,
    CaseKind,
    CaseView,
    Category,
    Channel,
    Entry,
    Status,
    Urgency,
)
from cases.routing import route, supervisors
from cases.store import Change
from registry.models import Person, Role


class Refused(Exception):
    """The actor may not do this; `str(error)` is the Chinese answer (already audited)."""


class BadInput(Exception):
    """The command is wrong (empty, too long, a bad word); `str(error)` says how to fix it."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command did and what the actor should read."""

    case: Case
    reply: str


class CaseService:
    def __init__(self, deps: CasesDeps, *, source: str = "") -> None:
        self.deps = deps
        self.source = source
        self.names: dict[str, str] = {}  # people of the last case opened, for its reply

    # helpers --------------------------------------------------------------------------
    async def _audit(self, actor: str, action: str, ok: bool, target: str = "",
                     detail: str = "") -> None:
        await self.deps.audit.record(actor, f"cases.{action}", "ok" if ok else "refused",
                                     target=target, detail=detail, source=self.source)

    async def _refuse(self, actor: str, action: str, target: str, message: str) -> Refused:
        await self._audit(actor, action, False, target, message)
        return Refused(message)

    def _entry(self, actor: str, action: str, text: str = "") -> Entry:
        return Entry(self.deps.now(), actor, action, scrub(text))

    def _text(self, text: str, what: str) -> str:
        text = text.strip()
        limit = self.deps.config.max_text_chars
        if len(text) > limit:
            raise BadInput(f"{what}过长（{len(text)} 字），请控制在 {limit} 字以内后重新发送。")
        return scrub(text)

    @property
    def window(self) -> float:
        return float(self.deps.config.attach_window_seconds)

    def limit(self, urgency: Urgency) -> float:
        c = self.deps.config
        return float(c.respond_urgent_seconds if urgency is Urgency.URGENT
                     else c.respond_normal_seconds)

    async def _load(self, actor: str, case_id: str, action: str, *, act: bool
                    ) -> tuple[Case, Person | None]:
        case = await self.deps.store.get(case_id)
        person = await self.deps.registry.person(actor)
        allowed = case is not None and (access.may_act(actor, person, case) if act
                                        else access.may_view(actor, person, case))
        if case is None or not allowed:
            shown = case_id.strip()[:12] or "（空）"
            msg = (f"没有找到事件 {shown}，或您无权查看/处理它。请用「我的事件」查看可处理的"
                   "事件。" if case is None or not access.may_view(actor, person, case)
                   else f"您可以查看事件 {case.id}，但无权处理它（仅该网格的民警、辅警及上级"
                   "可处理）。")
            raise await self._refuse(actor, action, shown, msg)
        return case, person

    async def _change(self, actor: str, case: Case, action: str, change: Change,
                      entry: Entry) -> Case:
        try:
            changed = await self.deps.store.update(case.id, change, entry)
        except BadInput as error:
            await self._audit(actor, action, False, case.id, str(error))
            raise
        assert changed is not None  # cases are never deleted
        await self._audit(actor, action, True, case.id, entry.text[:200])
        return changed

    # intake: a member's 上报 ---------------------------------------------------------------
    async def report(self, actor: str, text: str) -> Outcome:
        person = await self.deps.registry.person(actor)
        if person is None:
            raise await self._refuse(actor, "report", "", "您不在网格登记名单中，不能上报事件。"
                                     "请联系派出所管理员登记。")
        named, body = split_node(text.strip())
        body = self._text(body, "事件描述")
        if not body:
            raise BadInput(f"请写明事件内容。格式：{texts.USAGE_REPORT}")
        node = named or next((n for n in person.nodes), "")
        if not node:
            raise BadInput("您没有负责的网格，请在描述前写明网格，如「上报 @网格编码 描述」。")
        if named and not await self._within(person, node):
            raise await self._refuse(actor, "report", node, f"节点 {node} 不在您负责的范围内。")
        case = await self.open_case(node, body, Channel.APP, actor, reporter_label=person.name)
        await self.deps.redis.set(self.deps.keys.last_report(actor), str(case.number),
                                  px=self.deps.clock.real_ms(self.window))
        people = self.names
        reply = (f"已上报，编号 {case.id}（{case.category.value}·{case.urgency.value}，"
                 f"如有误可回复「类别 {case.id} 交通」或「类别 {case.id} 紧急」更正）。\n"
                 f"已转 {texts.names(people, case.officers)} 处理，应在 "
                 f"{texts.minutes(self.limit(case.urgency))}内接单。\n"
                 f"{texts.minutes(self.window)}内发送的照片和位置会附在此事件。")
        return Outcome(case, reply)

    async def _within(self, person: Person, node: str) -> bool:
        path = await self.deps.registry.path(node)
        return bool(path) and bool(set(person.nodes) & {n.code for n in path})

    async def open_case(self, node: str, body: str, channel: Channel, reporter: str, *,
                        reporter_label: str, notice: int = 0, issuer: str = "",
                        sealed: str = "", case_id: str = "") -> Case:
        """Create, index, notify and start the response clock (no access check here)."""
        routed = await route(self.deps.registry, node)
        if routed is None:
            raise BadInput(f"网格 {node} 不存在，请检查编码。")
        self.names = routed.names
        category = suggest_category(body)
        urgency = suggest_urgency(body)
        now = self.deps.now()
        case = Case(
            id=case_id or await self.deps.store.next_id(), kind=kind_for(category),
            category=category, urgency=urgency, node=node, path=routed.path,
            township=routed.township, county=routed.county, text=body, channel=channel,
            reporter=reporter, created_at=now, respond_due=now + self.limit(urgency),
            officers=(issuer,) if issuer else routed.officers,
            grid_workers=() if notice else routed.grid_workers, notice=notice,
            sealed_reporter=sealed,
        )
        if notice:
            case = case.with_(kind=CaseKind.CLUE)
        await self.deps.store.create(case, Entry(now, reporter or "居民", "上报", body))
        await clocks.schedule(self.deps, clocks.Clock(case.number, "respond", case.respond_due))
        await self._audit(reporter or "resident", "open", True, case.id,
                          f"{case.category.value} {case.node}")
        await notify.tell(self.deps, case.officers,
                          texts.new_case_notice(case, reporter_label, self.limit(urgency)))
        return case

    async def attach(self, actor: str, *, photo: str = "", location: str = "") -> Outcome:
        """A member's photo or location joins the case they reported in the last minutes."""
        raw = rtext(await self.deps.redis.get(self.deps.keys.last_report(actor)))
        if not raw:
            what = "照片" if photo else "位置"
            raise BadInput(f"没有正在上报的事件，{what}未保存。请先发送「上报 描述」，"
                           f"再在 {texts.minutes(self.window)}内发送{what}。")
        case = await self.deps.store.get(f"E{raw}")
        assert case is not None

        def add(c: Case) -> Case:
            if photo:
                return c.with_(photos=(*c.photos, photo))
            return c.with_(location=location)

        entry = self._entry(actor, "照片" if photo else "位置", location)
        changed = await self._change(actor, case, "attach", add, entry)
        what = f"照片（共 {len(changed.photos)} 张）" if photo else "位置"
        return Outcome(changed, f"已将{what}附在事件 {changed.id}。")

    # reading ------------------------------------------------------------------------------
    async def view(self, actor: str, case_id: str) -> CaseView:
        case, _ = await self._load(actor, case_id, "view", act=False)
        label = await self._reporter_label(actor, case)
        await self._audit(actor, "view", True, case.id)
        return CaseView(case, await self.deps.store.timeline(case), label)

    async def _reporter_label(self, actor: str, case: Case) -> str:
        if case.channel is Channel.APP:
            people = await notify.names(self.deps, [case.reporter])
            return people.get(case.reporter, case.reporter)
        resident = kfsend.Resident.open(self.deps, case) if case.is_clue else None
        if resident is None:
            return "居民（微信客服）"
        # the issuing officer sees who gave the clue; every such view is audited
        await self._audit(actor, "view_tipster", True, case.id, "举报人身份已查看")
        phone = f"，电话 {mask_phone(resident.phone)}" if resident.phone else ""
        return f"居民（微信客服 {resident.external_userid}{phone}）"

    async def queue(self, actor: str, *, limit: int = 200) -> list[Case]:
        """Open cases the actor may see: overdue first, then by due time."""
        person = await self.deps.registry.person(actor)
        codes = set(person.nodes) if person else set()
        numbers: set[int] = set()
        for code in codes:
            numbers.update(await self.deps.store.numbers(self.deps.keys.open_under(code)))
        numbers.update(await self.deps.store.numbers(self.deps.keys.mine(actor)))
        cases = [c for c in await self.deps.store.many(sorted(numbers))
                 if c.status.open and access.may_view(actor, person, c)]
        now = self.deps.now()
        cases.sort(key=lambda c: (not (c.status in (Status.NEW, Status.REOPENED)
                                       and c.respond_due < now), c.respond_due))
        await self._audit(actor, "queue", True, detail=f"{len(cases)} 件")
        return cases[:limit]

    async def overdue(self, actor: str) -> list[Case]:
        """Supervisors' view: open cases past their response time, in the actor's area."""
        now = self.deps.now()
        return [c for c in await self.queue(actor, limit=10_000)
                if c.status in (Status.NEW, Status.REOPENED) and c.respond_due < now]

    # acting -------------------------------------------------------------------------------
    async def accept(self, actor: str, case_id: str) -> Case:
        case, _ = await self._load(actor, case_id, "accept", act=True)
        now = self.deps.now()

        def take(c: Case) -> Case:
            if c.status not in (Status.NEW, Status.REOPENED):
                raise BadInput(f"事件 {c.id} 已由 {c.accepted_by or c.handler} 接单"
                               f"（{c.status.label}），无需重复接单。")
            return c.with_(status=Status.ACCEPTED, handler=actor,
                           accepted_by=c.accepted_by or actor,
                           accepted_at=c.accepted_at or now,
                           first_response_at=c.first_response_at or now)

        changed = await self._change(actor, case, "accept", take, self._entry(actor, "接单"))
        people = await notify.names(self.deps, [actor])
        await self._tell_reporter(changed, f"您上报的事件 {changed.id} 已由 "
                                           f"{people.get(actor, actor)} 接单处理。")
        return changed

    async def answer(self, actor: str, case_id: str, text: str) -> Case:
        case, _ = await self._load(actor, case_id, "answer", act=True)
        body = self._text(text, "答复内容")
        if not body:
            raise BadInput(f"请写明答复内容：答复 {case.id} 内容")
        now = self.deps.now()

        def answered(c: Case) -> Case:
            if c.status is Status.NEW:  # an answer is a first response too
                return c.with_(status=Status.ACCEPTED, handler=actor, accepted_by=actor,
                               accepted_at=now, first_response_at=c.first_response_at or now)
            return c.with_(first_response_at=c.first_response_at or now)

        changed = await self._change(actor, case, "answer", answered,
                                     self._entry(actor, "答复", body))
        return await self._tell_reporter(changed, f"【事件 {changed.id} 答复】{body}")

    async def arrive(self, actor: str, case_id: str) -> Case:
        case, _ = await self._load(actor, case_id, "arrive", act=True)
        now = self.deps.now()

        def arrived(c: Case) -> Case:
            if c.status is Status.CLOSED:
                raise BadInput(f"事件 {c.id} 已办结。")
            return c.with_(status=Status.ON_SITE, arrived_at=now, handler=c.handler or actor,
                           accepted_by=c.accepted_by or actor, accepted_at=c.accepted_at or now,
                           first_response_at=c.first_response_at or now)

        return await self._change(actor, case, "arrive", arrived, self._entry(actor, "到场"))

    async def close(self, actor: str, case_id: str, result: str) -> Case:
        case, _ = await self._load(actor, case_id, "close", act=True)
        body = self._text(result, "办结结果")
        if not body:
            raise BadInput(f"请写明办结结果：办结 {case.id} 结果")
        now = self.deps.now()
        words = body.split()
        level = next((w for w in SETTLE_LEVELS if w in words), "")
        route_ = next((w for w in ROUTES if w in body), "")
        outcome = next((w for w in OUTCOMES if w in words or body.startswith(w)), "")

        def closed(c: Case) -> Case:
            if c.status is Status.CLOSED:
                raise BadInput(f"事件 {c.id} 已办结，无需重复办结。")
            return c.with_(status=Status.CLOSED, closed_at=now, closed_by=actor, result=body,
                           handler=c.handler or actor, accepted_by=c.accepted_by or actor,
                           accepted_at=c.accepted_at or now,
                           first_response_at=c.first_response_at or now,
                           settle_level=level or c.settle_level, route=route_ or c.route,
                           outcome=outcome or c.outcome, satisfaction="")

        changed = await self._change(actor, case, "close", closed,
                                     self._entry(actor, "办结", body))
        await self._ask_rating(changed, body)
        return changed

    async def transfer(self, actor: str, case_id: str, to: str) -> Case:
        case, _ = await self._load(actor, case_id, "transfer", act=True)
        target = to.strip()
        if not target:
            raise BadInput(f"请写明转交给谁：转交 {case.id} 对方userid，或 转交 {case.id} 调解")
        if target in ("调解", *ROUTES):
            return await self._to_mediation(actor, case, target)
        person = await self.deps.registry.person(target)
        if person is None or not (person.role in access.ACTING_ROLES or
                                  person.role is Role.GRID_WORKER):
            raise BadInput(f"找不到可接收事件的人员 {target[:32]}，请写对方的企业微信账号。")
        if case.is_clue and person.role is Role.GRID_WORKER:
            raise BadInput("线索只能转交给民警。")
        changed = await self._change(
            actor, case, "transfer", lambda c: c.with_(handler=person.userid),
            self._entry(actor, "转交", f"转交 {person.name}"))
        await notify.tell(self.deps, [person.userid],
                          f"【事件 {changed.id} 转交给您】{changed.text}\n查看：事件 {changed.id}")
        return changed

    async def _to_mediation(self, actor: str, case: Case, target: str) -> Case:
        route_ = target if target in ROUTES else "人民调解"
        workers = case.grid_workers

        def change(c: Case) -> Case:
            return c.with_(route=route_, handler=workers[0] if workers else c.handler,
                           settle_level=c.settle_level or "网格")

        changed = await self._change(actor, case, "transfer", change,
                                     self._entry(actor, "转交", f"转{route_}"))
        await notify.tell(self.deps, workers,
                          f"【事件 {changed.id} 转{route_}】{changed.text}\n调解后请回复"
                          f"「办结 {changed.id} 调解成功 网格 结果」")
        return changed

    async def correct(self, actor: str, case_id: str, word: str) -> Case:
        """类别 E12 交通 / 紧急 E12 / 一般 E12: the reporter or the police correct it."""
        case, person = await self._load(actor, case_id, "correct", act=False)
        if actor != case.reporter and not access.may_act(actor, person, case):
            raise await self._refuse(actor, "correct", case.id, "只有上报人和处理民警可以更正。")
        category = category_named(word)
        urgency = next((u for u in Urgency if u.value == word.strip()), None)
        if category is None and urgency is None:
            raise BadInput("类别只能是 治安/矛盾纠纷/消防安全/交通/求助/其他，"
                           "紧急程度为 紧急/一般。")

        def fix(c: Case) -> Case:
            if category is not None:
                kind = c.kind if c.is_clue else kind_for(category)
                return c.with_(category=category, kind=kind)
            assert urgency is not None
            return c.with_(urgency=urgency, respond_due=c.created_at + self.limit(urgency))

        changed = await self._change(actor, case, "correct", fix,
                                     self._entry(actor, "更正", word.strip()))
        if urgency is not None and changed.status is Status.NEW:
            await clocks.schedule(self.deps, clocks.Clock(changed.number, "respond",
                                                          changed.respond_due))
        return changed

    async def parties(self, actor: str, case_id: str, names: list[str]) -> Case:
        """当事人 E12 张三 李四: stored masked only."""
        case, _ = await self._load(actor, case_id, "parties", act=True)
        masked = tuple(mask_name(n) for n in names if n.strip())[:10]
        if not masked:
            raise BadInput(f"请写明当事人：当事人 {case.id} 姓名 姓名")

        def set_parties(c: Case) -> Case:
            return c.with_(parties=masked, category=Category.DISPUTE,
                           kind=kind_for(Category.DISPUTE))

        return await self._change(actor, case, "parties", set_parties,
                                  self._entry(actor, "当事人", "、".join(masked)))

    # closing the loop ---------------------------------------------------------------------
    async def _ask_rating(self, case: Case, result: str) -> None:
        text = (f"您反映的事件 {case.id} 已办结：{result}\n请评价：回复 满意 / 基本满意 / 不满意")
        who = case.reporter if case.channel is Channel.APP else kfsend.survey_key(self.deps, case)
        if who:
            await self.deps.redis.set(self.deps.keys.survey(who), str(case.number),
                                      px=self.deps.clock.real_ms(7 * 86400))
        await self._tell_reporter(case, text)

    async def rate(self, actor: str, word: str, case_id: str = "") -> Case | None:
        """The reporter's 满意/基本满意/不满意 (on the case they were asked about)."""
        if word not in SATISFACTION:
            raise BadInput("请回复 满意、基本满意 或 不满意。")
        number = case_id or rtext(await self.deps.redis.get(self.deps.keys.survey(actor)))
        if not number:
            return None
        case = await self.deps.store.get(f"E{str(number).removeprefix('E')}")
        if case is None or case.status is not Status.CLOSED or (
                case.channel is Channel.APP and case.reporter != actor):
            return None
        await self.deps.redis.delete(self.deps.keys.survey(actor))
        return await self.apply_rating(actor, case, word)

    async def apply_rating(self, actor: str, case: Case, word: str) -> Case:
        sups = await supervisors(self.deps.registry, case.township or case.node)

        def rated(c: Case) -> Case:
            if word != "不满意":
                return c.with_(satisfaction=word)
            return c.with_(satisfaction=word, status=Status.REOPENED, reopened=c.reopened + 1,
                           handler=sups[0] if sups else c.handler,
                           escalated_to=tuple(dict.fromkeys((*c.escalated_to, *sups))),
                           respond_due=self.deps.now() + self.limit(c.urgency))

        changed = await self._change(actor or "resident", case, "rate", rated,
                                     self._entry(actor or "居民", "评价", word))
        if word == "不满意":
            await notify.tell(self.deps, sups,
                              f"【回访 {changed.id}】上报人对办理结果不满意，请回访后"
                              f"「办结 {changed.id} 回访结果」。\n{changed.text}")
        return changed

    # telling the reporter ------------------------------------------------------------------
    async def _tell_reporter(self, case: Case, text: str) -> Case:
        if case.channel is Channel.KF:
            return await kfsend.tell_resident(self.deps, case, text)
        await notify.tell(self.deps, [case.reporter], text)
        return case
