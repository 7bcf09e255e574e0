"""The chat commands' logic, one function per command: (deps, userid, args, source) -> reply.

Kept apart from handlers/collect.py so the commands can be called (and tested) without the
router, and so the handler module stays a thin dispatcher.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from collect import officer, pending, replies
from collect.access import Actor
from collect.campaign import Campaigns
from collect.changes import correct as apply_correction
from collect.changes import set_status
from collect.deps import CollectDeps
from collect.flow import GuidedFlow
from collect.models import ChangeKind, RecordKind
from collect.results import Submission
from collect.service import CollectService
from collect.template import parse_pairs, split_kind

Action = Callable[[CollectDeps, str, str, str], Awaitable[str]]
_RECORD_ID = re.compile(r"^\s*([APHUaphu]\d{1,12})\b\s*(.*)$", re.S)
KINDS_HINT = "请写明类型：采集 人口 ／ 采集 房屋 ／ 采集 单位 ／ 采集 地址"


async def start_guided(deps: CollectDeps, userid: str, args: str, source: str) -> str:
    kind = RecordKind.from_label(args.split()[0]) if args.split() else None
    return await GuidedFlow(deps).start(userid, kind)


async def collect(deps: CollectDeps, userid: str, args: str, source: str) -> str:
    """`采集` (guided), `采集 人口` (guided) or `采集 人口` + lines (template)."""
    if not args:
        return await GuidedFlow(deps).start(userid, None)
    kind, body = split_kind(args)
    if kind is None:
        return f"无法识别采集类型。{KINDS_HINT}"
    if not body:
        return await GuidedFlow(deps).start(userid, kind)
    parsed = parse_pairs(kind, body)
    if parsed.problems:
        return "未保存，请修改后重新发送：\n" + "\n".join(parsed.problems)
    sub = Submission(kind, parsed.values, Actor.staff(userid), source)
    result = await CollectService(deps).submit(sub)
    return await pending.reply_or_hold(deps, userid, sub, result)


async def correct(deps: CollectDeps, userid: str, args: str, source: str) -> str:
    """`更正 P12 电话：…` (several pairs, one per line or on one line; 原因：… optional)."""
    match = _RECORD_ID.match(args)
    kind = RecordKind.of_id(match.group(1)) if match else None
    if match is None or kind is None:
        return "用法：更正 编号 项目：新内容，如 更正 P12 电话：138xxxxxxxx（可加 原因：…）"
    parsed = parse_pairs(kind, match.group(2), extra=("原因",))
    if parsed.problems:
        return "未更正，请修改后重新发送：\n" + "\n".join(parsed.problems)
    values = dict(parsed.values)
    reason = values.pop("原因", "")
    if not values:
        return "请写明要更正的项目，如 更正 P12 电话：138xxxxxxxx"
    record_id = match.group(1).upper()
    sub = Submission(kind, values, Actor.staff(userid), source, ChangeKind.CORRECT, reason=reason)
    result = await apply_correction(deps, sub, record_id)
    return await pending.reply_or_hold(deps, userid, sub, result, record_id)


async def _status(deps: CollectDeps, userid: str, args: str, source: str,
                  change: ChangeKind) -> str:
    match = _RECORD_ID.match(args)
    if match is None:
        return f"用法：{change.value} 编号 原因，如 {change.value} P12 已迁往外地"
    result = await set_status(deps, Actor.staff(userid), match.group(1).upper(), change,
                              match.group(2).strip(), source)
    return replies.answer(result)


async def move_out(deps: CollectDeps, userid: str, args: str, source: str) -> str:
    return await _status(deps, userid, args, source, ChangeKind.MOVE_OUT)


async def cancel_record(deps: CollectDeps, userid: str, args: str, source: str) -> str:
    return await _status(deps, userid, args, source, ChangeKind.CANCEL)


async def review(deps: CollectDeps, userid: str, args: str, source: str) -> str:
    """`核查 P12 通过` or `核查 P12 退回 原因`."""
    match = _RECORD_ID.match(args)
    verdict, _, reason = (match.group(2).strip().partition(" ") if match else ("", "", ""))
    if match is None or verdict[:2] not in ("通过", "退回"):
        return "用法：核查 编号 通过｜核查 编号 退回 原因，如 核查 P12 退回 门牌号有误"
    reason = (verdict[2:] + " " + reason).strip()
    result = await officer.review(deps, userid, match.group(1), verdict.startswith("通过"),
                                  reason, source)
    if result.record is None:
        return replies.answer(result)
    return f"已核查：{result.record.id} → {result.record.state.label}\n" + replies.summary(
        result.record)


async def todo(deps: CollectDeps, userid: str, args: str, source: str) -> str:
    return replies.todo(await officer.todo(deps, userid))


async def lookup(deps: CollectDeps, userid: str, args: str, source: str) -> str:
    if not args.strip():
        return "用法：查询 编号或身份证号码，如 查询 P12"
    return replies.lookup(await officer.lookup(deps, userid, args.split()[0], source))


async def progress(deps: CollectDeps, userid: str, args: str, source: str) -> str:
    campaigns = Campaigns(deps)
    campaign = await campaigns.get(args.split()[0]) if args.split() else None
    if campaign is None:
        return "用法：采集进度 C编号（发起采集时回复的编号），如 采集进度 C1"
    if not await _may_follow(deps, userid, campaign.root):
        return "无权查看：该采集不在您负责的区域内"
    return replies.progress(campaign, await campaigns.progress(campaign), deps.now())


async def _may_follow(deps: CollectDeps, userid: str, root: str) -> bool:
    person = await deps.access.person(userid)
    if person is None:
        return False
    if await deps.registry.covers(userid, root):
        return True
    return any([await deps.registry.is_within(n, root) for n in person.nodes])
