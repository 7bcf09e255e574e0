"""The guided collection flow: one question per message, each answer checked on arrival.

A bad answer is re-asked at most settings.collect.max_reasks times, 取消 ends the flow, and
the state lives in Redis (collect/sessions.py), so a restart in between loses nothing.
"""

from __future__ import annotations

from typing import Any

from collect import pending
from collect.access import Actor
from collect.deps import CollectDeps
from collect.models import RecordKind
from collect.replies import answer, problems
from collect.results import Outcome, Submission
from collect.schema import FLOW_FIELDS, FieldSpec, spec
from collect.service import CollectService
from collect.sessions import FLOW, Sessions
from collect.tenants import resolve_tenants
from collect.validate import CHECKERS, Issue, Severity, check_text, today

CANCEL_WORDS = frozenset({"取消", "退出", "结束"})
SKIP_WORDS = frozenset({"跳过", "无", "没有"})
KIND_CHOICES = {"1": RecordKind.PERSON, "2": RecordKind.HOUSE, "3": RecordKind.UNIT,
                "4": RecordKind.ADDRESS}
CHOOSE = "请选择采集类型：1 人口、2 房屋、3 单位、4 地址（回复数字或名称；回复 取消 退出）"


class GuidedFlow:
    def __init__(self, deps: CollectDeps) -> None:
        self.deps = deps
        self.sessions = Sessions(deps)

    async def start(self, userid: str, kind: RecordKind | None) -> str:
        denied = await self.deps.access.may_collect_at_all(Actor.staff(userid))
        if denied:
            return denied
        state: dict[str, Any] = {"kind": kind.value if kind else "", "step": 0, "values": {},
                                 "reasks": 0}
        await self.sessions.save(userid, FLOW, state)
        head = "开始引导采集，可随时回复 取消 退出。\n"
        return head + (self._prompt(kind, 0) if kind else CHOOSE)

    async def active(self, userid: str) -> bool:
        return await self.sessions.load(userid, FLOW) is not None

    async def answer(self, userid: str, text: str, source: str) -> str | None:
        """The next question (or the outcome); None when the user has no flow running."""
        state = await self.sessions.load(userid, FLOW)
        if state is None:
            return None
        if text.strip() in CANCEL_WORDS:
            await self.sessions.drop(userid, FLOW)
            return "已取消引导采集，未保存任何内容。"
        if not state["kind"]:
            return await self._choose(userid, state, text)
        return await self._field(userid, state, text.strip(), source)

    async def _choose(self, userid: str, state: dict[str, Any], text: str) -> str:
        kind = KIND_CHOICES.get(text.strip()) or RecordKind.from_label(text)
        if kind is None:
            message = "采集类型：无法识别，请回复 1–4 或 人口/房屋/单位/地址"
            return await self._reask(userid, state, message, CHOOSE)
        state.update(kind=kind.value, step=0, reasks=0)
        await self.sessions.save(userid, FLOW, state)
        return self._prompt(kind, 0)

    async def _field(self, userid: str, state: dict[str, Any], text: str, source: str) -> str:
        kind = RecordKind(state["kind"])
        field = spec(kind, FLOW_FIELDS[kind][state["step"]])
        issue = await self._check(userid, kind, field, text)
        if issue is not None:
            prompt = self._prompt(kind, state["step"])
            return await self._reask(userid, state, issue.message, prompt)
        state["values"][field.name] = "" if text in SKIP_WORDS else text
        state.update(step=state["step"] + 1, reasks=0)
        if state["step"] < len(FLOW_FIELDS[kind]):
            await self.sessions.save(userid, FLOW, state)
            return self._prompt(kind, state["step"])
        return await self._finish(userid, state, source)

    async def _check(self, userid: str, kind: RecordKind, field: FieldSpec,
                     text: str) -> Issue | None:
        if text in SKIP_WORDS:
            return Issue(field.name, Severity.ERROR, f"{field.label}：此项必填，不能跳过"
                         ) if field.required else None
        if field.name == "address":
            where = await CollectService(self.deps).where(Actor.staff(userid), {"address": text})
            return where if isinstance(where, Issue) else None
        if field.name == "tenants":
            _, issues = await resolve_tenants(self.deps, {"tenants": text})
            return issues[0] if issues else None
        checker = CHECKERS.get(field.name)
        result = checker(text, today(self.deps.clock)) if checker else check_text(text, field)
        errors = [i for i in result.issues if i.severity is Severity.ERROR]
        return errors[0] if errors else None

    async def _reask(self, userid: str, state: dict[str, Any], message: str, prompt: str) -> str:
        state["reasks"] += 1
        limit = self.deps.settings.collect.max_reasks
        if state["reasks"] > limit:
            await self.sessions.drop(userid, FLOW)
            return (f"{message}\n已连续 {state['reasks']} 次未通过，本次引导采集已结束，"
                    "已填内容未保存。可发送「采集」重新开始，"
                    "或按模板一次性发送（发送 帮助 查看）。")
        await self.sessions.save(userid, FLOW, state)
        return f"{message}\n{prompt}（第 {state['reasks']}/{limit} 次重新询问，回复 取消 退出）"

    async def _finish(self, userid: str, state: dict[str, Any], source: str) -> str:
        kind = RecordKind(state["kind"])
        sub = Submission(kind, state["values"], Actor.staff(userid), source)
        result = await CollectService(self.deps).submit(sub)
        back = _first_flow_field(kind, result.issues) if result.outcome is Outcome.REFUSED else -1
        if back >= 0:
            state.update(step=back)
            return await self._reask(userid, state, problems(result.issues),
                                     self._prompt(kind, back))
        await self.sessions.drop(userid, FLOW)
        if result.outcome is Outcome.CONFIRM:
            return await pending.reply_or_hold(self.deps, userid, sub, result)
        return answer(result)

    @staticmethod
    def _prompt(kind: RecordKind, step: int) -> str:
        field = spec(kind, FLOW_FIELDS[kind][step])
        total = len(FLOW_FIELDS[kind])
        return f"【采集{kind.label} {step + 1}/{total}】{field.prompt}"


def _first_flow_field(kind: RecordKind, issues: tuple[Issue, ...]) -> int:
    order = FLOW_FIELDS[kind]
    steps = [order.index(i.field) for i in issues if i.field in order]
    return min(steps) if steps else -1
