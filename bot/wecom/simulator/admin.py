"""/sim/ JSON endpoints: drive and inspect a simulator running in another process."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, Protocol

from aiohttp import web

from bot.wecom.simulator.admin_kf import KF_ROUTES, KfDriven
from bot.wecom.simulator.callbacks import Callback, CallbackResult
from bot.wecom.simulator.config import FaultConfig, LatencyConfig
from bot.wecom.simulator.records import Drop, Records
from bot.wecom.simulator.state import SimState
from bot.wecom.simulator.tasks import Task


class Driven(KfDriven, Protocol):
    """What /sim/ drives and reads: the simulator (bot.wecom.simulator.WeComSimulator).

    A protocol, so that the simulator, which serves these routes, and its admin views do not
    import each other.
    """

    state: SimState

    @property
    def records(self) -> Records: ...
    def load_directory(self, users: Mapping[str, str],
                       escalation: Mapping[str, Sequence[str]] | None = None) -> None: ...
    def add_customer_group(self, chat_id: str, name: str, owner: str, member_count: int,
                           quota_used: int = 0, *, notice: str = "",
                           create_time: int | None = None, status: int = 0,
                           admins: Sequence[str] = ()) -> None: ...
    def add_appchat(self, chat_id: str, name: str, members: Sequence[str]) -> None: ...
    def add_robot(self, key: str, chat_id: str) -> None: ...
    def invalidate_token(self) -> None: ...
    def set_faults(self, *faults: FaultConfig) -> None: ...
    def set_latency(self, latency: LatencyConfig) -> None: ...
    def build_text(self, from_user: str, content: str, *,
                   msg_id: str | None = None) -> Callback: ...
    async def deliver(self, callback: Callback, *,
                      retries: int | None = None) -> CallbackResult: ...
    async def post_chat_event(self, chat_id: str, change_type: str, update_detail: str = "",
                              **extra: Any) -> CallbackResult: ...
    async def post_contact_event(self, user_id: str, external_user_id: str,
                                 change_type: str = "add_external_contact",
                                 **extra: str) -> CallbackResult: ...
    def drops(self, reason: str | None = None) -> list[Drop]: ...
    def task(self, msgid: str) -> Task | None: ...
    def tasks(self) -> list[Task]: ...
    def stats(self) -> dict[str, Any]: ...


View = Callable[[Driven, web.Request], Awaitable[Any]]
_dumps = partial(json.dumps, ensure_ascii=False)


def add_routes(app: web.Application, sim: Driven) -> None:
    for method, path, view in ROUTES:
        app.router.add_route(method, f"/sim/{path}", partial(_serve, sim, view))


async def _serve(sim: Driven, view: View, request: web.Request) -> web.Response:
    try:
        return web.json_response(await view(sim, request), dumps=_dumps)
    except (KeyError, TypeError, ValueError) as error:
        return web.json_response(
            {"error": f"{type(error).__name__}: {error}"}, status=400, dumps=_dumps
        )


async def _body(request: web.Request) -> dict[str, Any]:
    body = await request.json() if request.can_read_body else {}
    if not isinstance(body, dict):
        raise ValueError("JSON object expected")
    return body


async def stats(sim: Driven, request: web.Request) -> dict[str, Any]:
    return sim.stats()


async def records(sim: Driven, request: web.Request) -> list[dict[str, Any]]:
    """?chat_id= | ?userid= (else everything), &channel=, &limit= (latest N)."""
    query = request.query
    target = query.get("chat_id") or query.get("userid")
    channel = query.get("channel")
    found = sim.records.to_target(target) if target else sim.records.deliveries
    rows = [d.to_dict() for d in found if not channel or d.channel == channel]
    limit = int(query.get("limit", "0"))
    return rows[-limit:] if limit else rows


async def drops(sim: Driven, request: web.Request) -> list[dict[str, Any]]:
    return [d.to_dict() for d in sim.drops(request.query.get("reason"))]


async def tasks(sim: Driven, request: web.Request) -> list[dict[str, Any]]:
    msgid = request.query.get("msgid")
    found = [sim.task(msgid)] if msgid else sim.tasks()
    return [t.view() for t in found if t is not None]


async def callbacks(sim: Driven, request: web.Request) -> list[dict[str, Any]]:
    return [a.to_dict() for a in sim.records.callback_attempts]


async def directory(sim: Driven, request: web.Request) -> dict[str, int]:
    body = await _body(request)
    sim.load_directory(body.get("users", {}), body.get("escalation", {}))
    return {"users": len(sim.state.directory.users)}


async def groups(sim: Driven, request: web.Request) -> dict[str, int]:
    """{"customer_groups": [{chat_id, name, owner, member_count, quota_used?, notice?}],
    "appchats": [{chat_id, name, members}], "robots": [{key, chat_id}]}"""
    body = await _body(request)
    for group in body.get("customer_groups", []):
        sim.add_customer_group(**group)
    for chat in body.get("appchats", []):
        sim.add_appchat(**chat)
    for robot in body.get("robots", []):
        sim.add_robot(**robot)
    return {key: len(body.get(key, [])) for key in ("customer_groups", "appchats", "robots")}


def _result(result: CallbackResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "label": result.callback.label,
        "attempts": [a.to_dict() for a in result.attempts],
        "reply": result.reply,
    }


async def post_text(sim: Driven, request: web.Request) -> list[dict[str, Any]]:
    """{from_user, content, msg_id?, repeat?}: repeat > 1 delivers the same body again."""
    body = await _body(request)
    callback = sim.build_text(body["from_user"], body["content"], msg_id=body.get("msg_id"))
    return [_result(await sim.deliver(callback)) for _ in range(int(body.get("repeat", 1)))]


async def chat_event(sim: Driven, request: web.Request) -> dict[str, Any]:
    body = await _body(request)
    chat_id, change_type = body.pop("chat_id"), body.pop("change_type")
    detail = body.pop("update_detail", "")
    return _result(await sim.post_chat_event(chat_id, change_type, detail, **body))


async def contact_event(sim: Driven, request: web.Request) -> dict[str, Any]:
    body = await _body(request)
    user_id, external = body.pop("user_id"), body.pop("external_user_id")
    return _result(await sim.post_contact_event(user_id, external, **body))


async def invalidate_token(sim: Driven, request: web.Request) -> dict[str, bool]:
    sim.invalidate_token()
    return {"ok": True}


async def faults(sim: Driven, request: web.Request) -> dict[str, int]:
    """{"faults": [{rate, weights?, timeout_mode?, apis?}]}; an empty list clears them."""
    body = await _body(request)
    configs = [
        FaultConfig(**{**f, "apis": frozenset(f.get("apis", ()))}) for f in body.get("faults", [])
    ]
    sim.set_faults(*configs)
    return {"faults": len(configs)}


async def latency(sim: Driven, request: web.Request) -> dict[str, float]:
    """{median, p99} in simulated seconds; median 0 switches latency off."""
    config = LatencyConfig(**await _body(request))
    sim.set_latency(config)
    return {"median": config.median, "p99": config.p99}


ROUTES: tuple[tuple[str, str, View], ...] = (
    ("GET", "stats", stats),
    ("GET", "records", records),
    ("GET", "drops", drops),
    ("GET", "tasks", tasks),
    ("GET", "callbacks", callbacks),
    ("POST", "directory", directory),
    ("POST", "groups", groups),
    ("POST", "post_text", post_text),
    ("POST", "chat_event", chat_event),
    ("POST", "contact_event", contact_event),
    ("POST", "invalidate_token", invalidate_token),
    ("POST", "faults", faults),
    ("POST", "latency", latency),
    *KF_ROUTES,  # 微信客服 residents, members' photos and locations (admin_kf.py)
)
