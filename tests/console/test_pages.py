"""Every console page over HTTP as a county officer, and scope: a grid worker and another
county's officer see only their own, and URLs naming another scope answer 403, audited."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tests.broadcasts.conftest import CITY_OFFICER, CITY_OFFICER_2
from tests.console.conftest import COUNTY, COUNTY_OFFICER, OTHER_OFFICER, Console
from tests.console.seed import open_case, pending_record

Make = Callable[..., Awaitable[Console]]
HTML = {"Accept": "text/html"}


async def test_pages_render_for_a_county_officer(make_console: Make) -> None:
    console = await make_console()
    record = await pending_record(console)
    case_id = await open_case(console)
    async with await console.client() as s:
        await console.sign_in(s, COUNTY_OFFICER)
        for path in ("/console/", f"/console/node/{COUNTY}", "/console/notices",
                     "/console/coverage", "/console/collect",
                     f"/console/collect/records/{record.id}",
                     "/console/cases", f"/console/cases/{case_id}", "/console/assess",
                     "/console/audit"):
            async with s.get(console.base + path) as r:
                text = await r.text()
                assert r.status == 200, (path, text[:500])


async def _issue(console: Console, s: object, csrf: str, targets: str = "交口县") -> int:
    import aiohttp
    assert isinstance(s, aiohttp.ClientSession)
    form = {"level": "urgent", "targets": targets, "text": "暴雨预警，请远离河道", "_csrf": csrf}
    async with s.post(console.base + "/console/notices", data=form) as r:
        page = await r.text()
        assert r.status == 200, page[:400]
        assert "确认" in page
    (nid,) = await console.env.rt.notices.latest_of(COUNTY_OFFICER)
    return nid


async def test_scope_of_other_county_and_grid_worker(make_console: Make) -> None:
    console = await make_console()
    record = await pending_record(console)
    case_id = await open_case(console)
    async with await console.client() as s:
        csrf = await console.sign_in(s, COUNTY_OFFICER)
        nid = await _issue(console, s, csrf)
    forbidden = (f"/console/notices/{nid}", f"/console/notices/{nid}/late",
                 f"/console/notices/{nid}/live", f"/console/node/{COUNTY}",
                 f"/console/coverage?node={COUNTY}", f"/console/assess?node={COUNTY}",
                 f"/console/assess.xlsx?node={COUNTY}", f"/console/cases/{case_id}",
                 f"/console/collect/records/{record.id}")
    async with await console.client() as s:
        csrf = await console.sign_in(s, OTHER_OFFICER)
        async with s.get(console.base + "/console/notices") as r:
            assert f"#{nid}" not in await r.text()
        async with s.get(console.base + "/console/cases") as r:
            assert case_id not in await r.text()
        async with s.get(console.base + "/console/collect") as r:
            assert record.id not in await r.text()
        for path in forbidden:
            async with s.get(console.base + path) as r:
                assert r.status == 403, path
        async with s.post(console.base + f"/console/notices/{nid}/confirm",
                          data={"_csrf": csrf}) as r:
            assert r.status == 403
        async with s.post(console.base + f"/console/cases/{case_id}/accept",
                          data={"_csrf": csrf}) as r:
            assert r.status == 403
        async with s.post(console.base + f"/console/collect/review/{record.id}",
                          data={"_csrf": csrf, "verdict": "pass"}) as r:
            assert r.status == 403
    refused = [(x.action, x.target) for x in await console.env.rt.audit.entries(
        actor=OTHER_OFFICER) if x.outcome == "refused"]
    assert ("console.view", COUNTY) in refused
    assert ("broadcast.progress", f"#{nid}") in refused
    assert ("broadcast.confirm", f"#{nid}") in refused
    assert {a for a, _ in refused} >= {"collect.lookup", "collect.review"}
    assert any(a.startswith("cases.") for a, _ in refused), refused

    worker = console.grid_worker
    async with await console.client() as s:
        csrf = await console.sign_in(s, worker)
        async with s.get(console.base + "/console/notices") as r:
            assert f"#{nid}" in await r.text(), "the notice concerns the worker's grid"
        async with s.get(console.base + "/console/cases") as r:
            assert case_id in await r.text()
        async with s.get(console.base + "/console/coverage") as r:
            assert r.status == 200
        for path in (f"/console/notices/{nid}", f"/console/coverage?node={COUNTY}",
                     f"/console/node/{COUNTY}", "/console/audit"):
            async with s.get(console.base + path) as r:
                assert r.status == 403, path
    refused = [(x.action, x.target) for x in await console.env.rt.audit.entries(actor=worker)
               if x.outcome == "refused"]
    assert ("console.view", COUNTY) in refused and ("broadcast.progress", f"#{nid}") in refused


async def test_approve_and_follow_up_from_the_console(make_console: Make) -> None:
    """A city-wide 协查通报 needs a second officer's 批准 (settings.broadcast), then 更新."""
    console = await make_console()
    first, second = CITY_OFFICER, CITY_OFFICER_2
    async with await console.client() as a, await console.client() as b:
        csrf_a = await console.sign_in(a, first)
        form = {"level": "assist", "targets": "吕梁市", "text": "协查：白色轿车晋J·A1234",
                "_csrf": csrf_a}
        async with a.post(console.base + "/console/notices", data=form) as r:
            assert r.status == 200
        (nid,) = await console.env.rt.notices.latest_of(first)
        async with a.post(console.base + f"/console/notices/{nid}/confirm",
                          data={"_csrf": csrf_a}) as r:
            assert "需另一位民警" in await r.text()
        async with a.post(console.base + f"/console/notices/{nid}/approve",
                          data={"_csrf": csrf_a}) as r:
            assert r.status == 403, "the issuer cannot approve their own notice"
        csrf_b = await console.sign_in(b, second)
        async with b.get(console.base + f"/console/notices/{nid}") as r:
            assert 'id="approve"' in await r.text()
        async with b.post(console.base + f"/console/notices/{nid}/approve",
                          data={"_csrf": csrf_b}) as r:
            assert r.status == 200 and "已批准" in await r.text()
        notice = await console.env.rt.notices.get(nid)
        assert notice is not None and notice.approver == second
        async with a.post(console.base + f"/console/notices/{nid}/followup",
                          data={"_csrf": csrf_a, "kind": "update",
                                "text": "嫌疑车辆已换牌"}) as r:
            assert r.status == 200 and "已开始发送到原通知送达的" in await r.text()
    audited = {(x.actor, x.action, x.outcome) for x in await console.env.rt.audit.entries()}
    assert {(first, "broadcast.approve", "refused"), (second, "broadcast.approve", "ok"),
            (first, "broadcast.update", "ok")} <= audited


async def test_audit_log_of_the_subtree(make_console: Make) -> None:
    console = await make_console()
    async with await console.client() as s:
        await console.sign_in(s, OTHER_OFFICER)
        async with s.get(console.base + f"/console/coverage?node={COUNTY}") as r:
            assert r.status == 403
        await console.sign_in(s, console.grid_worker)
        async with s.get(console.base + "/console/audit") as r:
            assert r.status == 403, "grid workers have no audit page"
    async with await console.client() as s:
        await console.sign_in(s, COUNTY_OFFICER)
        async with s.get(console.base + "/console/audit?outcome=refused") as r:
            page = await r.text()
    rows = page.split('id="audit"')[1]
    assert f"{OTHER_OFFICER}</td><td>console.view</td><td>拒绝</td><td>{COUNTY}" in rows, \
        "someone else's refused attempt on this county is shown"
    assert f"{console.grid_worker}</td><td>console.audit</td><td>拒绝" in rows
    assert "console.login</td><td>成功" not in rows, "filtered to refusals"
    async with await console.client() as s:
        await console.sign_in(s, OTHER_OFFICER)
        async with s.get(console.base + "/console/audit") as r:
            other = (await r.text()).split('id="audit"')[1]
    assert console.grid_worker not in other, "another county's log stays there"
