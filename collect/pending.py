"""A submission waiting for the worker's 确认保存 / 确认无误, kept sealed in Redis."""

from __future__ import annotations

from typing import Any

from collect.access import Actor
from collect.changes import correct
from collect.deps import CollectDeps
from collect.models import ChangeKind, RecordKind
from collect.replies import answer
from collect.results import CONFIRM_CHECKSUM, Outcome, Result, Submission
from collect.service import CollectService
from collect.sessions import CONFIRM, Sessions


async def hold(deps: CollectDeps, userid: str, sub: Submission, result: Result,
               record_id: str = "") -> None:
    """Remember `sub` until the worker confirms; the reply says which word is needed."""
    data: dict[str, Any] = {"kind": sub.kind.value, "values": dict(sub.values),
                            "source": sub.source, "change": sub.change.value,
                            "reason": sub.reason, "record_id": record_id,
                            "needs": result.confirm_word}
    await Sessions(deps).save(userid, CONFIRM, data)


async def waiting(deps: CollectDeps, userid: str) -> bool:
    return await Sessions(deps).load(userid, CONFIRM) is not None


async def cancel(deps: CollectDeps, userid: str) -> bool:
    return await Sessions(deps).drop(userid, CONFIRM)


async def confirm(deps: CollectDeps, userid: str, word: str, source: str) -> str | None:
    """Store the held submission with the worker's confirmation; None when nothing is held."""
    sessions = Sessions(deps)
    data = await sessions.load(userid, CONFIRM)
    if data is None:
        return None
    if data["needs"] == CONFIRM_CHECKSUM and word != CONFIRM_CHECKSUM:
        return (f"该条信息的校验位不符，请再次对照证照核对；完全一致请回复「{CONFIRM_CHECKSUM}」，"
                "放弃请回复「取消」")
    sub = Submission(RecordKind(data["kind"]), data["values"], Actor.staff(userid),
                     data["source"] or source, ChangeKind(data["change"]), confirmed=True,
                     override=word == CONFIRM_CHECKSUM, reason=data.get("reason", ""))
    await sessions.drop(userid, CONFIRM)
    if data.get("record_id"):
        result = await correct(deps, sub, data["record_id"])
    else:
        result = await CollectService(deps).submit(sub)
    if result.outcome is Outcome.CONFIRM:
        await hold(deps, userid, sub, result, data.get("record_id", ""))
    return answer(result)


async def reply_or_hold(deps: CollectDeps, userid: str, sub: Submission, result: Result,
                        record_id: str = "") -> str:
    """The reply to a first attempt; a result needing confirmation is held for the worker."""
    if result.outcome is Outcome.CONFIRM:
        await hold(deps, userid, sub, result, record_id)
    return answer(result)
