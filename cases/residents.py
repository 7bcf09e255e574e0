"""Residents through 微信客服: tied to the node of the link they came in by (its scene), their
text becomes a case — or a clue (线索) on a 协查通报 when they name its number, or give it when
the bot asks — and their photos and location join their last case.

A resident is named in Redis only by a keyed digest of the external_userid; the identity
itself (external_userid, 客服 account, a phone number in a clue) is sealed in the case.
Every message is taken once (SET NX on its msgid), whatever the intake delivers twice.
"""

from __future__ import annotations

import logging
import re

from bot.events import KfMessage
from bot.masking import scrub
from bot.rtypes import smap
from bot.rtypes import text as rtext
from bot.wecom.errors import WeComAPIError, WeComError
from broadcasts.keys import BroadcastKeys
from broadcasts.models import NoticeLevel
from broadcasts.notices import NoticeStore
from cases import kfsend, texts
from cases.deps import CasesDeps
from cases.models import SATISFACTION, Channel, Entry
from cases.service import BadInput, CaseService

log = logging.getLogger(__name__)
_NOTICE = re.compile(r"(?:协查|通报|线索)\D{0,6}?#?\s*(\d{1,7})|#\s*(\d{1,7})")
_ASKS_ABOUT = ("协查", "通报", "线索", "嫌疑", "见过此人", "看到此人", "见过这个人")
_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
SEEN_TTL = 4 * 86400  # simulated s: longer than sync_msg keeps a message (3 days)
CLAIM_MS = 60_000  # real ms a handler may take before another may try the message
WELCOME = ("您好，这里是{name}的社区警务服务。请直接发送您要反映的问题（可附照片、位置）；"
           "如有协查通报的线索，请写明通报编号，如「线索 #12 …」。您的身份信息将严格保密。")
NO_NODE = "请通过您所在小区群里的「联系社区民警」链接进入，以便转给您所在网格的民警。"


class ResidentDesk:
    def __init__(self, deps: CasesDeps, *, source: str = "") -> None:
        self.deps = deps
        self.service = CaseService(deps, source=source)
        self._seen = ""  # the claim key of the message being handled

    def _key(self, event: KfMessage) -> str:
        return self.deps.keys.resident(kfsend.resident_digest(self.deps, event.sender))

    def _resident(self, event: KfMessage) -> kfsend.Resident:
        return kfsend.Resident(event.sender, event.open_kfid)

    async def _say(self, event: KfMessage, text: str) -> None:
        await kfsend.send(self.deps, self._resident(event), text)

    async def handle(self, event: KfMessage) -> None:
        if self.deps.cipher is None or self.deps.blind is None:
            return  # no field keys: residents' identities could not be sealed
        if event.origin != 3 and event.msgtype != "event":
            return  # a servicer's own message from the WeCom client
        seen = self.deps.keys.kf_seen(event.msgid or event.dedupe_key)
        # claimed for a while, then marked done: a message delivered twice makes one change,
        # and one whose handler died (claim expired) is handled again when re-delivered
        if not await self.deps.redis.set(seen, "run", nx=True, px=CLAIM_MS):
            return
        self._seen = seen
        try:
            await self._dispatch(event)
        except BaseException:
            # a case already made for this message stands (no second case on a retry)
            if rtext(await self.deps.redis.get(seen)) == "run":
                await self.deps.redis.delete(seen)
            raise
        await self.deps.redis.set(seen, "done", px=self.deps.clock.real_ms(SEEN_TTL))

    async def _dispatch(self, event: KfMessage) -> None:
        if event.msgtype == "event":
            await self._event(event)
        elif event.msgtype == "text":
            await self._text(event)
        elif event.msgtype in ("image", "location"):
            await self._attach(event)
        else:
            await self._say(event, "暂时只能接收文字、照片和位置。")

    async def _event(self, event: KfMessage) -> None:
        if event.event_type == "enter_session" and event.scene:
            node = await self.deps.registry.node(event.scene)
            if node is None:
                return
            await self.deps.redis.hset(self._key(event), mapping={"node": node.code})
            if event.welcome_code and self.deps.wecom is not None:
                try:  # the code lives 20 s: a late intake simply has no welcome
                    await self.deps.wecom.kf_send_on_event(event.welcome_code,
                                                           WELCOME.format(name=node.name))
                except WeComError as error:
                    log.info("cases: no welcome for a resident (%s)", error.errcode
                             if isinstance(error, WeComAPIError) else type(error).__name__)
        elif event.event_type == "msg_send_fail":
            await kfsend.send_failed(self.deps, event.fail_msgid, event.fail_type)

    async def _text(self, event: KfMessage) -> None:
        state = smap(await self.deps.redis.hgetall(self._key(event)))
        text = event.text
        if text in SATISFACTION:
            if not await self._rate(event, text):
                await self._say(event, "目前没有需要您评价的事件。如有情况请直接用文字描述。")
            return
        node = state.get("node", "")
        if not node:
            await self._say(event, NO_NODE)
            return
        if len(text) > self.deps.config.max_text_chars:
            await self._say(event, f"内容过长（{len(text)} 字），请精简到 "
                                   f"{self.deps.config.max_text_chars} 字以内后重新发送。")
            return
        if not text:
            await self._say(event, "请用文字简单描述您要反映的情况。")
            return
        notice = await self._notice_named(text)
        pending = state.get("clue_text", "")
        if notice is None and pending and text.strip("#＃ ").isdigit():
            notice = await self._notice_named(f"#{text.strip('#＃ ')}")
            text = pending if notice else text
        if notice is not None:
            await self._clue(event, node, notice, text)
            return
        if any(w in text for w in _ASKS_ABOUT) and not pending:
            await self.deps.redis.hset(self._key(event), "clue_text", scrub(text)[:1000])
            await self._say(event, "请问是哪一期协查通报？请回复通报编号（如 12），"
                                   "与治安线索无关请回复「否」。")
            return
        await self.deps.redis.hdel(self._key(event), "clue_text")
        await self._case(event, node, pending if text == "否" and pending else text)

    async def _rate(self, event: KfMessage, word: str) -> bool:
        case = await self.service.rate(kfsend.resident_digest(self.deps, event.sender), word)
        if case is None:
            return False
        tail = "，我们会安排负责人回访" if word == "不满意" else ""
        await self._say(event, f"感谢您的评价（{case.id}：{word}）{tail}。")
        return True

    async def _notice_named(self, text: str) -> tuple[int, str] | None:
        match = _NOTICE.search(text)
        if not match:
            return None
        number = int(match.group(1) or match.group(2))
        notice = await NoticeStore(self.deps.redis, BroadcastKeys(self.deps.keys.keys),
                                   self.deps.clock).get(number)
        if notice is None or notice.level is not NoticeLevel.ASSIST:
            return None
        return notice.id, notice.issuer

    async def _new_case(self, event: KfMessage, node: str, text: str, *, notice: int = 0,
                        issuer: str = "") -> str:
        case_id = await self.deps.store.next_id()
        phone = next(iter(_PHONE.findall(text)), "") if notice else ""
        sealed = kfsend.Resident(event.sender, event.open_kfid, phone).seal(self.deps, case_id)
        try:
            case = await self.service.open_case(
                node, scrub(text), Channel.KF, "", reporter_label="居民（微信客服）",
                notice=notice, issuer=issuer, sealed=sealed, case_id=case_id)
        except BadInput as error:
            await self._say(event, str(error))
            return ""
        await self.deps.redis.set(self._seen, f"case:{case.id}",
                                  px=self.deps.clock.real_ms(SEEN_TTL))
        await self.deps.redis.hset(self._key(event), mapping={
            "case": str(case.number), "case_at": repr(self.deps.now())})
        await self.deps.redis.hdel(self._key(event), "clue_text")
        return case.id

    async def _case(self, event: KfMessage, node: str, text: str) -> None:
        case_id = await self._new_case(event, node, text)
        if case_id:
            await self._say(event, f"已收到，编号 {case_id}，已转您所在网格的民警处理。"
                                   "可继续发送照片或位置补充。")

    async def _clue(self, event: KfMessage, node: str, notice: tuple[int, str],
                    text: str) -> None:
        case_id = await self._new_case(event, node, text, notice=notice[0], issuer=notice[1])
        if case_id:
            await self._say(event, f"感谢您提供协查通报 #{notice[0]} 的线索（编号 {case_id}），"
                                   "已直接转给发布通报的民警，您的身份将严格保密。")

    async def _attach(self, event: KfMessage) -> None:
        state = smap(await self.deps.redis.hgetall(self._key(event)))
        window = self.deps.config.attach_window_seconds
        number = state.get("case", "")
        if not number or float(state.get("case_at", "0")) + window < self.deps.now():
            await self._say(event, "请先用文字简单描述您要反映的情况，再发送照片或位置。")
            return
        photo = event.media_id if event.msgtype == "image" else ""
        location = "" if photo else f"{event.latitude:.5f},{event.longitude:.5f} {event.label}"
        case = await self.deps.store.update(
            f"E{number}",
            (lambda c: c.with_(photos=(*c.photos, photo))) if photo
            else (lambda c: c.with_(location=location.strip())),
            Entry(self.deps.now(), "居民", "照片" if photo else "位置", scrub(location)))
        if case is not None:
            await self.deps.audit.record("resident", "cases.attach", "ok", target=case.id,
                                         source=self.service.source)
            await self._say(event, f"已附在 {case.id}。{texts.minutes(window)}内可继续补充。")
