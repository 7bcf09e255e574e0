"""概览: the person's own nodes, their next level with group counts, and the newest notices."""

from __future__ import annotations

import time

from aiohttp import web

from console.guard import Viewer, signed_in, source_of
from console.html import e, respond, shell, table
from console.notices import in_scope
from registry.models import DeliveryKind, Node


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/", signed_in(overview))
    app.router.add_get("/console/node/{code}", signed_in(node_page))


async def overview(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    main = ""
    for node in await viewer.home():
        main += await _node_card(viewer, node)
    notices = await in_scope(viewer, limit=5)
    rows = [(f'<a href="/console/notices/{n.id}">{e(n.title)}</a>', e(n.status.label),
             e(n.target_label)) for n in notices]
    main += ('<section class="card"><h2>最新通知</h2>'
             + table(("通知", "状态", "范围"), rows, tid="recent", raw=True) + "</section>")
    return respond(shell("概览", main, who=viewer.label, csrf=viewer.csrf, active="overview",
                         nav=viewer.nav))


async def node_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    node = await viewer.node(request.match_info["code"], source_of(request))
    return respond(shell(node.name, await _node_card(viewer, node), who=viewer.label,
                         csrf=viewer.csrf, active="overview", nav=viewer.nav))


_cards: dict[str, tuple[float, str]] = {}
CARD_SECONDS = 10.0  # group counts change with the registry's sync, not by the second


async def _node_card(viewer: Viewer, node: Node) -> str:
    """One node and its next level (the same for everyone allowed to see the node, so
    kept per process for CARD_SECONDS: a county's 100 officers opening it cost one read)."""
    now = time.monotonic()
    cached = _cards.get(node.code)
    if cached is not None and now - cached[0] < CARD_SECONDS:
        return cached[1]
    card = await _build_card(viewer, node)
    _cards[node.code] = (now, card)
    return card


async def _build_card(viewer: Viewer, node: Node) -> str:
    registry = viewer.deps.registry
    kids = await registry.children(node.code)
    rows = []
    for child in kids[:200]:
        counts = await registry.breakdown(child.code)
        link = f'<a href="/console/node/{e(child.code)}">{e(child.name)}</a>'
        rows.append((link, e(child.level.label), str(sum(counts.values())),
                     str(counts.get(DeliveryKind.CUSTOMER_GROUP, 0))))
    own = await registry.breakdown(node.code)
    head = (f'<h2>{e(node.name)}（{e(node.level.label)}）</h2><p class="meta">居民群 '
            f'{sum(own.values())} 个 · '
            f'<a href="/console/coverage?node={e(node.code)}">建群覆盖</a>'
            f' · <a href="/console/assess?node={e(node.code)}">考核</a></p>')
    return (f'<section class="card" data-node="{e(node.code)}">{head}'
            + table(("下级", "层级", "群数", "客户群"), rows, raw=True) + "</section>")
