"""GET /cgi-bin/media/get (residents_console_votes.md §3.1).

As WeCom: success is a plain download (Content-Type of the file, Content-Disposition with its
name); an error is a JSON body with HTTP 200 (40007 invalid media_id, 41006 missing), so a
client must branch on Content-Type, not on the status.
"""

from __future__ import annotations

import json
from functools import partial

from aiohttp import web

from bot.wecom.simulator.errors import SimError
from bot.wecom.simulator.state import SimState


def add_routes(app: web.Application, state: SimState) -> None:
    app.router.add_get("/cgi-bin/media/get", partial(media_get, state))


async def media_get(state: SimState, request: web.Request) -> web.StreamResponse:
    state.records.call("media/get")
    try:
        state.tokens.check(request.query.get("access_token"), state.now())
        media = state.media.get(request.query.get("media_id", ""), state.now())
    except SimError as error:
        state.records.error("media/get", error.errcode, state.now())
        return web.Response(text=json.dumps(error.body(), ensure_ascii=False),
                            content_type="application/json")
    headers = {"Content-Disposition": f'attachment; filename="{media.filename}"'}
    return web.Response(body=media.data, content_type=media.content_type, headers=headers)
