"""Page shell, tables and error pages. Everything is escaped here or by the caller with `e`;
pages load only /console/static/ (CSP 'self'), never anything from the internet."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from aiohttp import web

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
           "X-Frame-Options": "DENY"}
NAV = (("overview", "/console/", "概览"), ("notices", "/console/notices", "通知"),
       ("coverage", "/console/coverage", "建群覆盖"), ("collect", "/console/collect", "一标三实"),
       ("cases", "/console/cases", "事件"), ("assess", "/console/assess", "考核"),
       ("audit", "/console/audit", "审计"))


def e(value: object) -> str:
    return escape(str(value), quote=True)


def respond(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8",
                        headers=HEADERS)


def shell(title: str, main: str, *, who: str = "", csrf: str = "", active: str = "",
          nav: Sequence[str] = ()) -> str:
    links = "".join(f'<a href="{href}"{" class=on" if key == active else ""}>{label}</a>'
                    for key, href, label in NAV if key in nav)
    out = (f'<form method="post" action="/console/logout" class="out">'
           f'<input type="hidden" name="_csrf" value="{e(csrf)}">'
           f'<button type="submit" id="logout">退出</button></form>') if csrf else ""
    bar = (f'<header><b class="brand">网格警务控制台</b><nav>{links}</nav>'
           f'<span class="who">{e(who)}</span>{out}</header>') if who else ""
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<meta name="csrf" content="{e(csrf)}"><title>{e(title)} · 网格警务控制台</title>'
            f'<link rel="stylesheet" href="/console/static/console.css">'
            f'<script src="/console/static/console.js" defer></script></head>'
            f"<body>{bar}<main><h1>{e(title)}</h1>{main}</main></body></html>")


def error_page(status: int, title: str, text: str) -> web.Response:
    main = f'<p class="err" id="error">{e(text)}</p><p><a href="/console/">返回概览</a></p>'
    return respond(shell(title, main), status)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, tid: str = "",
          raw: bool = False) -> str:
    """A table; cells are escaped unless `raw` (then the caller built safe HTML)."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else e(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    ident = f' id="{e(tid)}"' if tid else ""
    return (f'<div class="scroll"><table{ident}><thead><tr>{head}</tr></thead>'
            f"<tbody>{body or '<tr><td colspan=99>暂无</td></tr>'}</tbody></table></div>")


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def form(action: str, csrf: str, fields: str, button: str, *, fid: str = "") -> str:
    ident = f' id="{e(fid)}"' if fid else ""
    return (f'<form method="post" action="{e(action)}"{ident}>'
            f'<input type="hidden" name="_csrf" value="{e(csrf)}">{fields}'
            f'<button type="submit">{e(button)}</button></form>')


def kpis(*items: tuple[str, object, str, str]) -> str:
    """Key figures: (label, value, after the value, element id)."""
    cells = []
    for label, value, small, ident in items:
        attr = f' id="{e(ident)}"' if ident else ""
        cells.append(f"<div><span>{e(label)}</span><b{attr}>{e(value)}</b>"
                     f"<small>{e(small)}</small></div>")
    return f'<div class="kpis">{"".join(cells)}</div>'
