"""Who is asking: the session behind the cookie, the person behind the session, and the
checks every console view makes before anything else (session; CSRF on every change).

What a person may see and do is decided by the registry (`covers`) and the domain services
(BroadcastService, collect's Access, CaseService): the console adds no rule of its own, it
only refuses early — and audits — a URL naming a node the person does not cover.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from console.deps import ConsoleDeps
from console.html import error_page
from console.sessions import Session
from registry.models import Node, Person, Role

COOKIE_SECURE, COOKIE_PLAIN = "__Host-gbc", "gbc"
deps_key = web.AppKey("console_deps", ConsoleDeps)
AUDIT_ROLES = frozenset({Role.OFFICER, Role.SUPERVISOR, Role.STATION_ADMIN})


@dataclass(frozen=True, slots=True)
class Viewer:
    person: Person
    session: Session
    deps: ConsoleDeps

    @property
    def userid(self) -> str:
        return self.person.userid

    @property
    def csrf(self) -> str:
        return self.session.csrf

    @property
    def label(self) -> str:
        return f"{self.person.role.label} {self.person.name}"

    @property
    def nav(self) -> tuple[str, ...]:
        base = ("overview", "notices", "coverage", "collect", "cases", "assess")
        return (*base, "audit") if self.person.role in AUDIT_ROLES else base

    async def covers(self, code: str) -> bool:
        return await self.deps.registry.covers(self.userid, code)

    async def node(self, code: str, source: str) -> Node:
        """The node named in a URL, if this person covers it; else 403, audited."""
        node = await self.deps.registry.node(code) if len(code) <= 64 else None
        if node is None:
            raise Refusal(404, "找不到该辖区", f"找不到辖区编码「{code[:64]}」，请从概览页进入。")
        if not await self.covers(code):
            await self.deps.audit.record(self.userid, "console.view", "refused", target=code,
                                         detail=f"越权访问 {node.name}", source=source)
            raise Refusal(403, "无权查看", f"「{node.name}」不在您负责的辖区内。")
        return node

    async def home(self) -> list[Node]:
        nodes = await self.deps.registry.nodes(list(self.person.nodes))
        return [n for n in nodes if n is not None]


class Refusal(Exception):
    def __init__(self, status: int, title: str, text: str) -> None:
        super().__init__(text)
        self.status, self.title, self.text = status, title, text


def cookie_name(deps: ConsoleDeps) -> str:
    return COOKIE_SECURE if deps.settings.console.secure_cookies else COOKIE_PLAIN


View = Callable[[web.Request, Viewer], Awaitable[web.StreamResponse]]


def signed_in(view: View) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Resolve the session (else sign-in page or 401), check CSRF on POST, run the view."""
    async def wrapper(request: web.Request) -> web.StreamResponse:
        deps = request.app[deps_key]
        session = await deps.sessions.get(request.cookies.get(cookie_name(deps), ""))
        if session is None:
            if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
                raise web.HTTPFound("/console/login?next=" + quote(request.path_qs, safe=""))
            return error_page(401, "请先登录", "未登录或登录已过期，请重新登录。")
        person = await deps.registry.person(session.userid)
        if person is None:  # removed from the staff list since signing in
            await deps.sessions.end(session)
            return error_page(403, "无权使用", "您已不在网格警务人员名单中。")
        viewer = Viewer(person, session, deps)
        if request.method != "GET":
            problem = await _csrf_problem(request, session)
            if problem:
                await deps.audit.record(person.userid, "console.csrf", "refused",
                                        target=request.path, detail=problem,
                                        source=source_of(request))
                return error_page(403, "请求被拒绝", problem)
        try:
            return await view(request, viewer)
        except Refusal as refusal:
            return error_page(refusal.status, refusal.title, refusal.text)
    return wrapper


async def _csrf_problem(request: web.Request, session: Session) -> str:
    origin = request.headers.get("Origin")
    if origin is not None and origin.split("://", 1)[-1] != request.host:
        return "来源校验失败：请从控制台页面操作。"
    token = request.headers.get("X-CSRF-Token", "")
    if not token and request.content_type in ("application/x-www-form-urlencoded",
                                              "multipart/form-data"):
        token = str((await request.post()).get("_csrf", ""))
    if not session.csrf_ok(token):
        return "缺少或错误的安全令牌（CSRF），请刷新页面后重试。"
    return ""


def source_of(request: web.Request) -> str:
    return f"console:{request.remote}"
