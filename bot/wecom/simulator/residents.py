"""Simulated residents in 微信客服 and members' photos/locations: the drivers tests, the demo
and the benchmark use (mixed into WeComSimulator).

Residents behave like people: each draws a class from the seed — most answer within
minutes, some hours later, some never, a few have blocked the account (every send then
fails with msg_send_fail, fail_type 10). What they answer comes from `replies` (scripted,
in order) or from a default that rates 满意 / 基本满意 / 不满意 when asked and otherwise
answers questions briefly.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.wecom.simulator import payloads
from bot.wecom.simulator.callbacks import Callback, CallbackPoster, CallbackResult
from bot.wecom.simulator.config import SimConfig
from bot.wecom.simulator.errors import SimError
from bot.wecom.simulator.kf import (
    FAIL_REFUSED,
    STATE_ENDED,
    STATE_NEW,
    WELCOME_TTL,
    WINDOW,
    Outgoing,
    Session,
)
from bot.wecom.simulator.media import sample_png
from bot.wecom.simulator.state import SimState


@dataclass(frozen=True, slots=True)
class SimLocation:
    """A place a resident or member shares."""

    latitude: float
    longitude: float
    name: str = ""
    address: str = ""


Said = str | bytes | SimLocation  # text, a photo's bytes, or a location
Replier = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class ResidentClass:
    """Residents who answer `delay` simulated seconds after a message reaches them."""

    name: str
    share: float
    delay: tuple[float, float] = (0.0, 0.0)
    answers: bool = True
    refuses: bool = False


DEFAULT_RESIDENTS = (
    ResidentClass("prompt", 0.55, (15.0, 180.0)),
    ResidentClass("late", 0.25, (1800.0, 6 * 3600.0)),
    ResidentClass("never", 0.17, answers=False),
    ResidentClass("refuses", 0.03, answers=False, refuses=True),
)
SATISFACTION = (("满意", 0.7), ("基本满意", 0.2), ("不满意", 0.1))


@dataclass(slots=True)
class Resident:
    external_userid: str
    kind: ResidentClass
    replies: list[str] = field(default_factory=list)
    replier: Replier | None = None


@dataclass(frozen=True, slots=True)
class KfPosted:
    """What a resident's action put into 微信客服 and the callback that announced it."""

    msgid: str
    open_kfid: str
    callback: Callback
    result: CallbackResult | None  # None when built with deliver=False


def default_reply(rng: random.Random, text: str) -> str | None:
    """A plausible resident answer to the bot's `text`, or None (no answer)."""
    if "满意" in text:
        point, edge = rng.random(), 0.0
        for answer, share in SATISFACTION:
            edge += share
            if point < edge:
                return answer
        return SATISFACTION[0][0]
    if text.rstrip().endswith(("？", "?")):
        return rng.choice(("好的", "是的", "谢谢，已经看到了", "不是"))
    return None


class KfDriver:
    """微信客服 residents and member media; mixed into WeComSimulator."""

    config: SimConfig
    state: SimState
    callbacks: CallbackPoster
    _msg_ids: itertools.count[int]

    def _kf_init(self, classes: Sequence[ResidentClass] = DEFAULT_RESIDENTS) -> None:
        self.resident_classes = tuple(classes)
        self.residents: dict[str, Resident] = {}
        self._kf_tasks: set[asyncio.Task[Any]] = set()
        self._kf_rng = random.Random(f"{self.config.seed}:residents")
        self._kf_ids = itertools.count(1)
        self.state.kf.on_sent = self._kf_on_sent

    async def _kf_close(self) -> None:
        for task in list(self._kf_tasks):
            task.cancel()
        await asyncio.gather(*self._kf_tasks, return_exceptions=True)

    # --- accounts and residents ------------------------------------------------------------
    def add_kf_account(self, name: str, open_kfid: str = "") -> str:
        """A 微信客服 account this app manages; its open_kfid."""
        return self.state.kf.add_account(name, open_kfid)

    def kf_link(self, open_kfid: str, scene: str) -> str:
        """A 客服 link as kf/add_contact_way makes it (for setting a scene up directly)."""
        try:
            return self.state.kf.add_link(open_kfid, scene)
        except SimError as error:
            raise ValueError(error.errmsg) from None

    def kf_resident(self, external_userid: str, kind: str | ResidentClass | None = None, *,
                    replies: Sequence[str] = (), replier: Replier | None = None) -> Resident:
        """Set (or draw from the seed) how a resident behaves; `replies` are said in order."""
        if kind is None and (replies or replier is not None):
            kind = self.resident_classes[0]  # scripted residents answer
        if isinstance(kind, str):
            kind = next(c for c in self.resident_classes if c.name == kind)
        resident = Resident(external_userid, kind or self._draw(external_userid),
                            list(replies), replier)
        self.residents[external_userid] = resident
        return resident

    def _resident(self, external_userid: str) -> Resident:
        found = self.residents.get(external_userid)
        return found if found is not None else self.kf_resident(external_userid)

    def _draw(self, external_userid: str) -> ResidentClass:
        point = random.Random(f"{self.config.seed}:resident:{external_userid}").random()
        edge = 0.0
        for kind in self.resident_classes:
            edge += kind.share
            if point < edge:
                return kind
        return self.resident_classes[-1]

    # --- what residents do -----------------------------------------------------------------
    async def kf_resident_enter(self, link_or_scene: str, external_userid: str, *,
                                deliver: bool = True, ago: float = 0.0) -> KfPosted:
        """The resident opens a 客服 link (the URL add_contact_way gave, or its scene)."""
        kf, now = self.state.kf, self.state.now() - ago
        open_kfid, scene, scene_param = kf.resolve_link(link_or_scene)
        session = kf.session(open_kfid, external_userid)
        session.refuses = self._resident(external_userid).kind.refuses
        event: dict[str, Any] = {"event_type": "enter_session", "open_kfid": open_kfid,
                                 "external_userid": external_userid, "scene": scene,
                                 "scene_param": scene_param}
        if self._welcome_allowed(session, now):
            event["welcome_code"] = kf.new_code(session, "welcome", WELCOME_TTL, now)
        msgid = self._kf_msgid()
        kf.append(open_kfid, now, {"msgid": msgid, "send_time": int(now), "origin": 4,
                                   "msgtype": "event", "event": event})
        return await self._kf_announce(open_kfid, msgid, deliver)

    @staticmethod
    def _welcome_allowed(session: Session, now: float) -> bool:
        recent = [t for t in (session.last_welcome, session.messaged_at) if t is not None]
        return not any(now - t < WINDOW for t in recent)

    async def kf_resident_says(self, external_userid: str, said: Said, *, open_kfid: str = "",
                               deliver: bool = True, ago: float = 0.0) -> KfPosted:
        """The resident sends text, a photo (its bytes) or a location to 微信客服."""
        kf, now = self.state.kf, self.state.now() - ago
        session = (kf.session(open_kfid, external_userid) if open_kfid
                   else kf.find_session(external_userid))
        if session.effective_state(now) == STATE_ENDED:
            session.state = STATE_NEW  # a new consultation (§1.9)
        session.last_user_msg, session.sent_in_window = now, 0
        msgid = self._kf_msgid()
        wire: dict[str, Any] = {"msgid": msgid, "open_kfid": session.open_kfid,
                                "external_userid": external_userid, "send_time": int(now),
                                "origin": 3, **self._payload(said, now)}
        kf.append(session.open_kfid, now, wire)
        return await self._kf_announce(session.open_kfid, msgid, deliver)

    def _payload(self, said: Said, now: float) -> dict[str, Any]:
        if isinstance(said, str):
            return {"msgtype": "text", "text": {"content": said}}
        if isinstance(said, bytes):
            media_id = self.state.media.put(said, _image_type(said), "photo.jpg", now)
            return {"msgtype": "image", "image": {"media_id": media_id}}
        return {"msgtype": "location", "location": {
            "latitude": said.latitude, "longitude": said.longitude, "name": said.name,
            "address": said.address}}

    async def kf_fail_send(self, msgid: str, fail_type: int, *, deliver: bool = True
                           ) -> KfPosted:
        """WeCom reports that a send it accepted did not arrive (msg_send_fail, §1.6)."""
        sent = next(o for o in self.state.kf.sent if o.msgid == msgid)
        sent.failed = fail_type
        event = {"event_type": "msg_send_fail", "open_kfid": sent.open_kfid,
                 "external_userid": sent.external_userid, "fail_msgid": msgid,
                 "fail_type": fail_type}
        event_id = self._kf_msgid()
        self.state.kf.append(sent.open_kfid, self.state.now(), {
            "msgid": event_id, "send_time": int(self.state.now()), "origin": 4,
            "msgtype": "event", "event": event})
        return await self._kf_announce(sent.open_kfid, event_id, deliver)

    def kf_force_empty_pages(self, count: int) -> None:
        """The next `count` sync_msg answers are empty with has_more = 1 (§1.6)."""
        self.state.kf.forced_empty_pages = count

    def build_kf_notice(self, open_kfid: str) -> Callback:
        """A kf_msg_or_event callback with a fresh 10-minute Token."""
        now = self.state.now()
        token = self.state.kf.new_token(open_kfid, now)
        xml = payloads.kf_event(self.config.corp_id, token, open_kfid, int(now))
        return self.callbacks.build(f"kf:{open_kfid}", xml)

    async def _kf_announce(self, open_kfid: str, msgid: str, deliver: bool) -> KfPosted:
        callback = self.build_kf_notice(open_kfid)
        # a simulator with no bot attached (rule tests) keeps the entry and posts nothing
        wanted = deliver and bool(self.config.callback_url)
        result = await self.callbacks.deliver(callback) if wanted else None
        return KfPosted(msgid, open_kfid, callback, result)

    def _kf_msgid(self) -> str:
        return f"kfmsg{self.config.seed:04d}{next(self._kf_ids):010d}"

    # --- what residents got ----------------------------------------------------------------
    def kf_messages_to(self, external_userid: str) -> list[Outgoing]:
        """What the app sent to the resident (send_msg and send_msg_on_event), in order."""
        return self.state.kf.sent_to(external_userid)

    def kf_session(self, external_userid: str, open_kfid: str = "") -> Session:
        kf = self.state.kf
        return (kf.session(open_kfid, external_userid) if open_kfid
                else kf.find_session(external_userid))

    def _kf_on_sent(self, sent: Outgoing) -> None:
        """A resident reacts to what reached them: refuses it, or answers later (or not)."""
        session = self.state.kf.session(sent.open_kfid, sent.external_userid)
        resident = self._resident(sent.external_userid)
        if session.refuses or resident.kind.refuses:
            self._spawn(self.kf_fail_send(sent.msgid, FAIL_REFUSED))
            return
        if not resident.kind.answers:
            return
        answer = self._answer(resident, sent.content)
        if answer is None:
            return
        low, high = resident.kind.delay
        due = self.state.now() + self._kf_rng.uniform(low, high)
        self.state.timers.call_at(due, lambda _at: self._spawn(
            self.kf_resident_says(sent.external_userid, answer, open_kfid=sent.open_kfid)))

    def _answer(self, resident: Resident, text: str) -> str | None:
        if resident.replies:
            return resident.replies.pop(0)
        if resident.replier is not None:
            return resident.replier(text)
        return default_reply(self._kf_rng, text)

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._kf_tasks.add(task)
        task.add_done_callback(self._kf_tasks.discard)

    # --- members' photos and locations to the app --------------------------------------------
    def build_image(self, from_user: str, data: bytes | None = None, *,
                    msg_id: str | None = None) -> Callback:
        """A member's photo: stored as temporary media, announced with its MediaId."""
        now = self.state.now()
        data = data if data is not None else sample_png(next(self._msg_ids))
        media_id = self.state.media.put(data, _image_type(data), "photo.jpg", now)
        msg_id = msg_id or self._app_msg_id()
        xml = payloads.image_message(self.config.corp_id, self.config.agent_id, from_user,
                                     media_id, f"https://wework.qpic.cn/sim/{media_id[:16]}",
                                     msg_id, int(now))
        return self.callbacks.build(f"image:{msg_id}", xml)

    async def post_image(self, from_user: str, data: bytes | None = None, *,
                         msg_id: str | None = None) -> CallbackResult:
        """A member sent a photo to the app."""
        return await self.callbacks.deliver(self.build_image(from_user, data, msg_id=msg_id))

    def build_location(self, from_user: str, latitude: float, longitude: float, *,
                       label: str = "", scale: int = 15, msg_id: str | None = None) -> Callback:
        msg_id = msg_id or self._app_msg_id()
        xml = payloads.location_message(self.config.corp_id, self.config.agent_id, from_user,
                                        latitude, longitude, scale, label, msg_id,
                                        int(self.state.now()))
        return self.callbacks.build(f"location:{msg_id}", xml)

    async def post_location(self, from_user: str, latitude: float, longitude: float, *,
                            label: str = "", scale: int = 15,
                            msg_id: str | None = None) -> CallbackResult:
        """A member shared a location with the app."""
        return await self.callbacks.deliver(self.build_location(
            from_user, latitude, longitude, label=label, scale=scale, msg_id=msg_id))

    def _app_msg_id(self) -> str:
        return str(4 * 10**18 + self.config.seed * 10**9 + next(self._msg_ids))


def _image_type(data: bytes) -> str:
    return "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
