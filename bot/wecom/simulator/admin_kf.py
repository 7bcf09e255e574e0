"""/sim/ endpoints for 微信客服 residents and members' photos/locations (JSON; for a simulator
running in another process). Mounted by bot.wecom.simulator.admin.

POST /sim/kf_account {name, open_kfid?} → {open_kfid}
POST /sim/kf_link {open_kfid, scene} → {url}            (what add_contact_way would give)
POST /sim/kf_resident {external_userid, kind?, replies?} → {external_userid, kind}
POST /sim/kf_enter {link, external_userid, ago?} → posted
POST /sim/kf_says {external_userid, text | image_base64 | location{latitude, longitude,
                   name?, address?}, open_kfid?, ago?, repeat?} → posted
     (repeat > 1 delivers the same kf_msg_or_event callback again)
POST /sim/kf_fail_send {msgid, fail_type} → posted
POST /sim/kf_empty_pages {count}
GET  /sim/kf_messages?external_userid= → what the app sent the resident
GET  /sim/kf_session?external_userid=&open_kfid= → {state, sent_in_window, …}
POST /sim/post_image {from_user, image_base64?, msg_id?, repeat?} → [result]
POST /sim/post_location {from_user, latitude, longitude, label?, scale?, msg_id?} → result
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiohttp import web

from bot.wecom.simulator.callbacks import Callback, CallbackResult
from bot.wecom.simulator.kf import Outgoing, Session
from bot.wecom.simulator.residents import KfPosted, Replier, Resident, ResidentClass, Said
from bot.wecom.simulator.residents import SimLocation as Location


class KfDriven(Protocol):
    """The simulator's 微信客服 and member-media drivers (bot.wecom.simulator.residents)."""

    def add_kf_account(self, name: str, open_kfid: str = "") -> str: ...
    def kf_resident(self, external_userid: str, kind: str | ResidentClass | None = None, *,
                    replies: Sequence[str] = (), replier: Replier | None = None
                    ) -> Resident: ...
    async def kf_resident_enter(self, link_or_scene: str, external_userid: str, *,
                                deliver: bool = True, ago: float = 0.0) -> KfPosted: ...
    async def kf_resident_says(self, external_userid: str, said: Said, *, open_kfid: str = "",
                               deliver: bool = True, ago: float = 0.0) -> KfPosted: ...
    async def kf_fail_send(self, msgid: str, fail_type: int, *,
                           deliver: bool = True) -> KfPosted: ...
    def kf_force_empty_pages(self, count: int) -> None: ...
    def kf_messages_to(self, external_userid: str) -> list[Outgoing]: ...
    def kf_session(self, external_userid: str, open_kfid: str = "") -> Session: ...
    def kf_link(self, open_kfid: str, scene: str) -> str: ...
    def build_image(self, from_user: str, data: bytes | None = None, *,
                    msg_id: str | None = None) -> Callback: ...
    async def post_location(self, from_user: str, latitude: float, longitude: float, *,
                            label: str = "", scale: int = 15,
                            msg_id: str | None = None) -> CallbackResult: ...
    async def deliver(self, callback: Callback, *,
                      retries: int | None = None) -> CallbackResult: ...


KfView = Callable[[KfDriven, web.Request], Awaitable[Any]]


async def _body(request: web.Request) -> dict[str, Any]:
    body = await request.json() if request.can_read_body else {}
    if not isinstance(body, dict):
        raise ValueError("JSON object expected")
    return body


def _result(result: CallbackResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {"ok": result.ok, "label": result.callback.label,
            "attempts": [a.to_dict() for a in result.attempts]}


def _posted(posted: KfPosted, extra: Sequence[CallbackResult] = ()) -> dict[str, Any]:
    return {"msgid": posted.msgid, "open_kfid": posted.open_kfid,
            "results": [_result(r) for r in (posted.result, *extra) if r is not None]}


async def kf_account(sim: KfDriven, request: web.Request) -> dict[str, str]:
    body = await _body(request)
    return {"open_kfid": sim.add_kf_account(body["name"], body.get("open_kfid", ""))}


async def kf_link(sim: KfDriven, request: web.Request) -> dict[str, str]:
    body = await _body(request)
    return {"url": sim.kf_link(body["open_kfid"], body.get("scene", ""))}


async def kf_resident(sim: KfDriven, request: web.Request) -> dict[str, str]:
    body = await _body(request)
    resident = sim.kf_resident(body["external_userid"], body.get("kind"),
                               replies=list(body.get("replies", [])))
    return {"external_userid": resident.external_userid, "kind": resident.kind.name}


async def kf_enter(sim: KfDriven, request: web.Request) -> dict[str, Any]:
    body = await _body(request)
    posted = await sim.kf_resident_enter(body["link"], body["external_userid"],
                                         ago=float(body.get("ago", 0.0)))
    return _posted(posted)


def _said(body: dict[str, Any]) -> Said:
    if "text" in body:
        return str(body["text"])
    if "image_base64" in body:
        return base64.b64decode(body["image_base64"], validate=True)
    place = body["location"]
    return Location(float(place["latitude"]), float(place["longitude"]),
                    str(place.get("name", "")), str(place.get("address", "")))


async def kf_says(sim: KfDriven, request: web.Request) -> dict[str, Any]:
    body = await _body(request)
    posted = await sim.kf_resident_says(body["external_userid"], _said(body),
                                        open_kfid=body.get("open_kfid", ""),
                                        ago=float(body.get("ago", 0.0)))
    again = [await sim.deliver(posted.callback) for _ in range(int(body.get("repeat", 1)) - 1)]
    return _posted(posted, again)


async def kf_fail_send(sim: KfDriven, request: web.Request) -> dict[str, Any]:
    body = await _body(request)
    return _posted(await sim.kf_fail_send(body["msgid"], int(body["fail_type"])))


async def kf_empty_pages(sim: KfDriven, request: web.Request) -> dict[str, int]:
    count = int((await _body(request))["count"])
    sim.kf_force_empty_pages(count)
    return {"count": count}


async def kf_messages(sim: KfDriven, request: web.Request) -> list[dict[str, Any]]:
    return [dataclasses.asdict(m) for m in sim.kf_messages_to(request.query["external_userid"])]


async def kf_session(sim: KfDriven, request: web.Request) -> dict[str, Any]:
    query = request.query
    session = sim.kf_session(query["external_userid"], query.get("open_kfid", ""))
    return {**dataclasses.asdict(session), "refuses": session.refuses}


async def post_image(sim: KfDriven, request: web.Request) -> list[dict[str, Any] | None]:
    body = await _body(request)
    data = base64.b64decode(body["image_base64"], validate=True) \
        if "image_base64" in body else None
    callback = sim.build_image(body["from_user"], data, msg_id=body.get("msg_id"))
    return [_result(await sim.deliver(callback)) for _ in range(int(body.get("repeat", 1)))]


async def post_location(sim: KfDriven, request: web.Request) -> dict[str, Any] | None:
    body = await _body(request)
    return _result(await sim.post_location(
        body["from_user"], float(body["latitude"]), float(body["longitude"]),
        label=body.get("label", ""), scale=int(body.get("scale", 15)),
        msg_id=body.get("msg_id")))


KF_ROUTES: tuple[tuple[str, str, KfView], ...] = (
    ("POST", "kf_account", kf_account),
    ("POST", "kf_link", kf_link),
    ("POST", "kf_resident", kf_resident),
    ("POST", "kf_enter", kf_enter),
    ("POST", "kf_says", kf_says),
    ("POST", "kf_fail_send", kf_fail_send),
    ("POST", "kf_empty_pages", kf_empty_pages),
    ("GET", "kf_messages", kf_messages),
    ("GET", "kf_session", kf_session),
    ("POST", "post_image", post_image),
    ("POST", "post_location", post_location),
)
