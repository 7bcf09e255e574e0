"""A scripted stand-in for WeCom's API, served over real HTTP under any path prefix.

Each API answers from its script (errcodes, "hang", "http500", "close") and then with
errcode 0; every request is recorded with its path, token and arrival time.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Seen:
    api: str
    path: str
    query: dict[str, str]
    body: dict[str, Any]
    at: float  # time.monotonic()


@dataclass
class FakeWeCom:
    prefix: str = "/cgi-bin/"
    expires_in: int = 7200
    scripts: dict[str, deque[int | str]] = field(default_factory=lambda: defaultdict(deque))
    seen: list[Seen] = field(default_factory=list)
    _tokens: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    current_token: str = ""

    def script(self, api: str, *answers: int | str) -> None:
        self.scripts[api].extend(answers)

    def requests(self, api: str) -> list[Seen]:
        return [s for s in self.seen if s.api == api]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", self.prefix + "{api:.+}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        api = request.match_info["api"]
        body = await request.json() if request.can_read_body else {}
        self.seen.append(Seen(api, request.path, dict(request.query), body, time.monotonic()))
        answer = self.scripts[api].popleft() if self.scripts[api] else 0
        if answer == "hang":
            await asyncio.sleep(30)
        if answer == "http500":
            return web.Response(status=500, text="upstream error")
        if answer == "close":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if api == "gettoken":
            return self._token(int(answer))
        if answer == 0 and request.query.get("access_token", self.current_token) not in (
                self.current_token, ""):
            return web.json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        return web.json_response({"errcode": answer, "errmsg": "scripted", "msgid": "m1"})

    def _token(self, errcode: int) -> web.Response:
        if errcode:
            return web.json_response({"errcode": errcode, "errmsg": "scripted"})
        self.current_token = f"TOKEN-{next(self._tokens)}"
        return web.json_response({"errcode": 0, "errmsg": "ok",
                                  "access_token": self.current_token,
                                  "expires_in": self.expires_in})
