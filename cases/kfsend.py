"""Answers to residents through 微信客服, inside its rules: when it will not take them (state
not 0/1, 5 messages used, 48 h passed — KfCannotSend, or a later msg_send_fail event), the
answer goes to the node's grid worker to pass on, and the case's timeline says so. A clue's
answer is never handed to anyone else (the tipster stays known to the issuing officer only)."""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass

from bot.masking import scrub
from bot.wecom.errors import KfCannotSend, WeComError
from cases import notify
from cases.deps import CasesDeps
from cases.models import Case, Entry

log = logging.getLogger(__name__)
SENT_TTL = 3 * 86400  # msg_send_fail arrives within the 3 days sync_msg keeps messages


@dataclass(frozen=True, slots=True)
class Resident:
    """A resident's identity, opened from the case's sealed field for one send only."""

    external_userid: str
    open_kfid: str
    phone: str = ""

    def seal(self, deps: CasesDeps, case_id: str) -> str:
        assert deps.cipher is not None
        raw = json.dumps({"u": self.external_userid, "k": self.open_kfid, "p": self.phone})
        return deps.cipher.seal(raw, case_id, "reporter")

    @classmethod
    def open(cls, deps: CasesDeps, case: Case) -> Resident | None:
        if not case.sealed_reporter or deps.cipher is None:
            return None
        data = json.loads(deps.cipher.open(case.sealed_reporter, case.id, "reporter"))
        return cls(data["u"], data["k"], data.get("p", ""))


def resident_digest(deps: CasesDeps, external_userid: str) -> str:
    """Keyed digest naming a resident in Redis keys (never the external_userid itself)."""
    assert deps.blind is not None
    return "kf-" + deps.blind.digest("kf", external_userid)


def survey_key(deps: CasesDeps, case: Case) -> str:
    resident = Resident.open(deps, case)
    return resident_digest(deps, resident.external_userid) if resident else ""


async def send(deps: CasesDeps, resident: Resident, text: str, number: int = 0) -> str | None:
    """Send text to a resident; the failure reason (Chinese) when 微信客服 refused it."""
    if deps.wecom is None:
        return "未连接企业微信"
    msgid = f"c{number}-{secrets.token_hex(6)}"
    try:
        await deps.wecom.kf_send_text(resident.external_userid, resident.open_kfid,
                                      scrub(text)[:600], msgid=msgid)
    except KfCannotSend as error:
        return error.reason
    except WeComError as error:
        log.warning("! cases: 微信客服 send failed: %s", error)
        return "发送失败"
    if number:
        await deps.redis.set(deps.keys.kf_sent(msgid), str(number),
                             px=deps.clock.real_ms(SENT_TTL))
    return None


async def tell_resident(deps: CasesDeps, case: Case, text: str) -> Case:
    resident = Resident.open(deps, case)
    reason = await send(deps, resident, text, case.number) if resident else "无居民联系方式"
    if reason is None:
        return case
    return await relay(deps, case, text, reason)


async def relay(deps: CasesDeps, case: Case, text: str, reason: str) -> Case:
    """微信客服 could not deliver `text`: the grid worker passes it on (not for clues)."""
    note = (f"答复未能送达举报人（{reason}）" if case.is_clue
            else f"答复未能通过微信客服送达（{reason}），已转网格员转告")
    changed = await deps.store.update(case.id, lambda c: c.with_(relayed=c.relayed + 1),
                                      Entry(deps.now(), "系统", "转告", note))
    await deps.audit.record("system", "cases.relay", "ok", target=case.id, detail=note)
    if case.is_clue:
        await notify.tell(deps, case.officers, f"【事件 {case.id}】{note}，请另行联系。")
    else:
        await notify.tell(deps, case.grid_workers,
                          f"【请转告居民 {case.id}】{case.text[:40]}\n答复：{text}")
    return changed or case


async def send_failed(deps: CasesDeps, fail_msgid: str, fail_type: int) -> Case | None:
    """msg_send_fail for one of our answers: relay it as if the send had been refused."""
    raw = await deps.redis.getdel(deps.keys.kf_sent(fail_msgid))
    if not raw:
        return None
    case = await deps.store.get(f"E{raw if isinstance(raw, str) else raw.decode()}")
    if case is None:
        return None
    timeline = await deps.store.timeline(case)
    last = next((e.text for e in reversed(timeline) if e.action in ("答复", "办结")), "")
    reasons = {4: "会话已超过48小时", 5: "会话已结束", 6: "已超过5条消息上限", 10: "居民拒收"}
    return await relay(deps, case, last, reasons.get(fail_type, f"发送失败（{fail_type}）"))
