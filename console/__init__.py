"""The officers' web console at /console/ (issue 14): what chat shows as text, as pages.

Sign-in is WeCom's (OAuth inside the WeCom client, QR login in a desktop browser; the code is
exchanged once through auth/getuserinfo). What a person sees and may do is exactly what the
chat allows: the pages call the domain services (BroadcastService, collect's officer/Access,
CaseService) and the registry's `covers`; a URL naming a node outside the person's subtree
answers 403 and is audited.

    web.py        setup(app): routes, static files, the console's services (cleanup context)
    deps.py       ConsoleDeps: the services one process uses
    keys.py       Redis keys (session `{cs:<digest>}`, login state `{cl:<state>}`)
    sessions.py   sessions (HttpOnly/Secure/SameSite cookie → SHA-256 in Redis, idle TTL,
                  absolute lifetime, CSRF token), login state, one-time sign-in links
    auth.py       /console/login, WeCom redirects, /console/auth/callback, sign-out
    guard.py      signed_in(view): session, person, CSRF on every change; Viewer.node() for
                  node-scoped URLs (403 + audit outside the subtree)
    html.py       page shell, tables, error pages (everything escaped; CSP 'self' only)
    overview.py   概览: own nodes, next level, newest notices
    notices.py    notices in scope, a notice's roll-up, late groups, commands, SSE stream
    rollup.py     the roll-up 市→县→乡镇→村社区→网格→群 and the late groups' owners/officers
    live.py       LiveHub: one Redis pattern subscription per process → SSE viewers
    coverage.py   村村建群、栋栋有群、户户进群: per node, table and tree
    collect.py    一标三实: campaign completion per grid, review queue, record history, export
    cases.py      事件: queue (overdue first), timeline, actions through CaseService
    assess.py     考核: notices on time, 已转达 rate, collection completeness, cases figures;
                  SVG charts (charts.py), XLSX export
    audit.py      审计: the subtree's audit log, filterable
    static/       console.css, console.js (no asset from the internet)

Cookies: `__Host-gbc` (HttpOnly, Secure, SameSite=Lax, Path=/). `console.secure_cookies =
false` drops Secure (and the `__Host-` prefix) and is accepted only on a loopback host —
for tests and the demo on http://127.0.0.1.
"""
