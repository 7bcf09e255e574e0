"""The /cgi-bin/ side: one pipeline (count, latency, fault, token, ceiling, handler) per call."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import web

from bot.wecom.simulator import (
    api_groupchat,
    api_groupmsg,
    api_kf,
    api_media,
    api_messages,
    errors,
)
from bot.wecom.simulator.errors import SimError
from bot.wecom.simulator.params import Body
from bot.wecom.simulator.state import SimState

Handler = Callable[[SimState, Body, Mapping[str, str]], dict[str, Any]]
dumps = partial(json.dumps, ensure_ascii=False)
_HANG_POLL = 0.02  # real seconds between checks whether the client gave up


@dataclass(frozen=True, slots=True)
class Api:
    name: str  # path below /cgi-bin/
    method: str
    handler: Handler
    token: bool = True  # needs access_token
    metered: bool = True  # counts against the per-API ceilings (app messages do not, §2.1)


APIS = (
    Api("gettoken", "GET", api_messages.gettoken, token=False),
    Api("message/send", "POST", api_messages.message_send, metered=False),
    Api("appchat/send", "POST", api_messages.appchat_send, metered=False),
    Api("webhook/send", "POST", api_messages.webhook_send, token=False, metered=False),
    Api("externalcontact/add_msg_template", "POST", api_groupmsg.add_msg_template),
    Api("externalcontact/get_groupmsg_list_v2", "POST", api_groupmsg.get_groupmsg_list_v2),
    Api("externalcontact/get_groupmsg_task", "POST", api_groupmsg.get_groupmsg_task),
    Api("externalcontact/get_groupmsg_send_result", "POST", api_groupmsg.get_groupmsg_send_result),
    Api("externalcontact/remind_groupmsg_send", "POST", api_groupmsg.remind_groupmsg_send),
    Api("externalcontact/cancel_groupmsg_send", "POST", api_groupmsg.cancel_groupmsg_send),
    Api("externalcontact/groupchat/list", "POST", api_groupchat.groupchat_list),
    Api("externalcontact/groupchat/get", "POST", api_groupchat.groupchat_get),
    Api("kf/account/list", "POST", api_kf.account_list),
    Api("kf/add_contact_way", "POST", api_kf.add_contact_way),
    Api("kf/sync_msg", "POST", api_kf.sync_msg),
    Api("kf/send_msg", "POST", api_kf.send_msg),
    Api("kf/send_msg_on_event", "POST", api_kf.send_msg_on_event),
    Api("kf/service_state/get", "POST", api_kf.service_state_get),
    Api("kf/service_state/trans", "POST", api_kf.service_state_trans),
)


def add_routes(app: web.Application, state: SimState) -> None:
    for api in APIS:
        app.router.add_route(api.method, f"/cgi-bin/{api.name}", partial(serve, state, api))
    api_media.add_routes(app, state)


async def serve(state: SimState, api: Api, request: web.Request) -> web.StreamResponse:
    state.records.call(api.name)
    await state.holds.pass_through(api.name)
    delay = state.latency.sample()
    if delay:
        await state.clock.sleep(delay)
    fault = state.faults.draw(api.name)
    kind = fault[0] if fault else None
    if kind:
        state.records.fault(kind)
    if kind == "5xx":
        return web.Response(status=502 if state.records.fault_counts["5xx"] % 2 else 503)
    if kind == "-1" or fault == ("timeout", "before_commit"):
        answer = SimError(errors.SYSTEM_BUSY).body()  # never reaches the handler
    else:
        answer = await _process(state, api, request)
    if kind == "timeout":
        await _hang(state, request)
    if answer["errcode"]:
        state.records.error(api.name, answer["errcode"], state.now())
    return web.json_response(answer, dumps=dumps)


async def _process(state: SimState, api: Api, request: web.Request) -> dict[str, Any]:
    try:
        if api.token:
            state.tokens.check(request.query.get("access_token"), state.now())
        if api.metered and not state.api_limits.admit(api.name, state.now()):
            raise SimError(errors.FREQ_LIMIT)
        return api.handler(state, await _body(request, api), request.query)
    except SimError as error:
        return error.body()


async def _body(request: web.Request, api: Api) -> Body:
    if api.method == "GET":
        return {}
    try:
        body = json.loads(await request.read() or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise SimError(errors.BAD_JSON) from None
    if not isinstance(body, dict):
        raise SimError(errors.BAD_JSON)
    return body


async def _hang(state: SimState, request: web.Request) -> None:
    """Hold the answer until the client hangs up (its timeout) or hang_seconds pass."""
    deadline = state.now() + state.config.hang_seconds
    while state.now() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(_HANG_POLL)
