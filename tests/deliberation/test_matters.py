"""Matters end to end: opened in chat, links to grid workers, votes through the page over real
HTTP, results by the law's quorum and majority (issue 15 §1–§3, §5)."""

from __future__ import annotations

import json
import re

from broadcasts.keys import BroadcastKeys
from broadcasts.notices import NoticeStore
from deliberation.models import Status
from deliberation.service import MatterService
from tests.deliberation.conftest import G01, G02, World, receipts
from tests.deliberation.data import add_households

OPEN = "议题\n村：东关村\n标题：修建村口道路\n说明：村集体出资铺设村口道路\n"


async def six_households(w: World) -> None:
    await add_households(w.collect, "w1", "东关街", 3)
    await add_households(w.collect, "w2", "西关街", 3, first=4)


async def open_matter(w: World, extra: str = "") -> str:
    reply = await w.send("p1", OPEN + extra)
    found = re.search(r"议题 (YT\d+)", reply)
    assert found, reply
    return found.group(1)


async def all_links(w: World, matter: str) -> list[str]:
    return await w.vote_links("w1", matter) + await w.vote_links("w2", matter)


async def test_household_matter_reaches_quorum_and_passes(w: World) -> None:
    await six_households(w)
    matter = await open_matter(w)
    matter_rec = await w.deps.matters.get(matter)
    assert matter_rec is not None and matter_rec.eligible == 6  # children are not voters
    roll = await w.deps.matters.roll(matter)
    assert {v.grid for v in roll} == {G01, G02}
    assert all(re.fullmatch(r"\S\*+（\S+街\d+号）", v.label) for v in roll), roll
    links = await all_links(w, matter)
    assert len(links) == 6 and len(set(links)) == 6
    pages = []
    for link, option in zip(links[:5], (0, 0, 0, 0, 1), strict=False):
        status, page = await w.vote(link, option)
        assert status == 200 and "投票成功" in page
        pages.append(page)
    progress = await w.send("p1", f"议题 进度 {matter}")
    assert "已参加 5/6户" in progress and "不公布各选项票数" in progress
    assert "同意 4" not in progress
    result = await w.send("p1", f"议题 结束 {matter}")
    assert "「同意」获通过" in result, result
    assert "参加5/6户，达到法定人数" in result and "同意 4；不同意 1；弃权 0" in result
    assert "不足10日" in result  # a 3-day poll is flagged: the law asks ten days' notice
    closed = await w.deps.matters.get(matter)
    assert closed is not None and closed.status is Status.CLOSED
    assert closed.result["present"] == 5 and closed.result["counts"] == [4, 1, 0]
    # announced twice in the village's groups through the notice engine, as p1's notice
    notices = NoticeStore(w.ctx.redis, BroadcastKeys(w.ctx.keys), w.ctx.clock)
    assert len(closed.notice_ids) == 2
    for nid in closed.notice_ids:
        notice = await notices.get(nid)
        assert notice is not None and notice.issuer == "p1"
        assert notice.target.codes == ("141181001001",)
        assert "说事议事" in notice.content.text
    assert "获通过" in (await notices.get(closed.notice_ids[1])).content.text  # type: ignore[union-attr]
    # every receipt proves inclusion
    for receipt in receipts(pages):
        found = await MatterService(w.deps).check_receipt(receipt)
        assert found.ok and found.counted, found


async def test_household_matter_failing_quorum(w: World) -> None:
    await six_households(w)
    matter = await open_matter(w)
    for link in (await all_links(w, matter))[:3]:  # 3 of 6 < two thirds
        assert (await w.vote(link, 0))[0] == 200
    result = await w.send("p1", f"议题 结束 {matter}")
    assert "参加人数不足，表决无效" in result and "未达到法定人数" in result, result
    closed = await w.deps.matters.get(matter)
    assert closed is not None and closed.result["quorum_met"] is False


async def test_two_thirds_matter(w: World) -> None:
    """土地承包方案: two thirds of ALL members, not of those present."""
    await six_households(w)
    first = await open_matter(w, "通过：三分之二\n")
    links = await all_links(w, first)
    for link, option in zip(links[:5], (0, 0, 0, 1, 1), strict=True):
        assert (await w.vote(link, option))[0] == 200
    result = await w.send("p1", f"议题 结束 {first}")
    # 3 of 5 present is a majority of those present, but 3 < 2/3 of 6 members
    assert "没有选项达到通过所需票数，未通过" in result and "全体成员三分之二以上" in result
    second = await open_matter(w, "通过：三分之二\n")
    for link, option in zip(await all_links(w, second), (0, 0, 0, 0, 1, 2), strict=True):
        assert (await w.vote(link, option))[0] == 200
    assert "「同意」获通过" in await w.send("p1", f"议题 结束 {second}")  # 4 of 6 = 2/3


async def _state(w: World, matter: str) -> tuple[int, list[str]]:
    return await w.deps.matters.turnout(matter), await w.deps.matters.entries(matter)


async def test_refusals_change_nothing(w: World) -> None:
    await six_households(w)
    await add_households(w.collect, "w3", "龙凤街", 2)
    matter = await open_matter(w)
    other = re.search(r"议题 (YT\d+)", await w.send(
        "p2", "议题\n村：龙凤村\n标题：修水渠"))
    assert other, "the other village's matter"
    links = await all_links(w, matter)
    assert (await w.vote(links[0], 0))[0] == 200
    before = await _state(w, matter)
    # the same link again: refused, with the page saying so
    status, page = await w.vote(links[0], 1)
    assert status == 409 and "已经投过票" in page
    form = {"option": "1", "csrf": "x"}
    # a forged link: the signature altered
    forged = links[1][:-3] + ("AAA" if not links[1].endswith("AAA") else "BBB")
    status, page = await w.vote(forged, 0)
    assert status == 403 and "链接无效" in page
    status, page = await w.post(forged, form)
    assert status == 403
    # a link of the other village's matter, used on this matter
    other_links = await w.vote_links("w3", other.group(1))
    token = other_links[0].rsplit("/", 1)[1]
    status, page = await w.vote(f"{links[0].rsplit('/', 2)[0]}/{matter}/{token}", 0)
    assert status == 403 and "链接无效" in page
    assert await _state(w, matter) == before
    # after closing
    await w.send("p1", f"议题 结束 {matter}")
    status, page = await w.vote(links[2], 0)
    assert status == 410 and "表决已经截止" in page
    closed = await w.deps.matters.get(matter)
    assert closed is not None and closed.result["present"] == 1
    assert await _state(w, matter) == before
    refusals = [e for e in await w.ctx.audit.entries(action="deliberation.vote")
                if e.outcome == "refused"]
    assert len(refusals) >= 2  # the forged post and the second vote, audited


async def test_not_on_roll_and_after_closing_time(w: World) -> None:
    await six_households(w)
    matter = await open_matter(w, "截止：2小时\n")
    links = await all_links(w, matter)
    service = MatterService(w.deps)
    from deliberation import links as signing

    stranger = signing.vote_token(w.deps.link_key, matter, "0123456789abcdef")
    answer = await service.vote(matter, stranger, 0)
    assert not answer.ok and "不在本议题的表决名单中" in answer.message
    w.ctx.clock.shift[0] += 3 * 3600  # type: ignore[attr-defined]  # past the closing time
    status, page = await w.vote(links[0], 0)
    assert status == 410 and "截止" in page
    assert await w.deps.matters.turnout(matter) == 0


async def test_changing_a_vote_when_allowed(w: World) -> None:
    await six_households(w)
    matter = await open_matter(w, "改票：允许\n")
    links = await all_links(w, matter)
    _, first = await w.vote(links[0], 1)
    _, second = await w.vote(links[0], 0)
    assert "已改票" in second
    for link in links[1:4]:
        await w.vote(link, 0)
    result = await w.send("p1", f"议题 结束 {matter}")
    assert "同意 4；不同意 0" in result, result
    old, new = receipts([first, second])
    service = MatterService(w.deps)
    assert not (await service.check_receipt(old)).counted
    assert (await service.check_receipt(new)).counted


async def test_show_of_hands_recorded_by_grid_worker(w: World) -> None:
    await six_households(w)
    matter = await open_matter(w, "方式：举手\n")
    # no links for a show of hands
    assert not [d for d in w.sim.app_messages_to("w1") if matter in d.content]
    refused = await w.send("w3", f"举手表决 {matter} 到会 5 同意 4 不同意 1 弃权 0")
    assert "只有本村网格员" in refused
    wrong = await w.send("w1", f"举手表决 {matter} 到会 5 同意 5 不同意 1 弃权 0")
    assert "不能超过到会人数" in wrong
    result = await w.send("w1", f"举手表决 {matter} 到会 5 同意 4 不同意 1 弃权 0")
    assert "「同意」获通过" in result and "举手表决，到会5/6户" in result, result
    closed = await w.deps.matters.get(matter)
    assert closed is not None and closed.result["mode"] == "hands"
    again = await w.send("w2", f"举手表决 {matter} 到会 6 同意 1 不同意 5 弃权 0")
    assert "已结束" in again
    assert json.loads((await w.deps.matters.entries(matter))[0])["present"] == 5


async def test_only_officer_or_appointed_organiser_opens(w: World) -> None:
    await six_households(w)
    assert "只有负责东关村的民警" in await w.send("w1", OPEN)
    assert "只有负责东关村的民警" in await w.send("p2", OPEN)
    assert "不是东关村的在册工作人员" in await w.send("p1", "议题 组织者 w3 村：东关村")
    assert "已指定网格员甲" in await w.send("p1", "议题 组织者 w1 村：东关村")
    opened = await w.send("w1", OPEN)
    assert re.search(r"议题 YT\d+「修建村口道路」已开始表决", opened), opened
    # the organiser sees turnout, never counts or voters
    matter = re.findall(r"YT\d+", opened)[0]
    assert "已参加 0/6户" in await w.send("w1", f"议题 进度 {matter}")
    actions = {(e.actor, e.action, e.outcome) for e in await w.ctx.audit.entries()}
    assert ("w1", "deliberation.open", "refused") in actions
    assert ("w1", "deliberation.open", "ok") in actions
    assert ("p1", "deliberation.appoint", "ok") in actions


async def test_change_and_withdrawal_are_audited_and_announced(w: World) -> None:
    await six_households(w)
    matter = await open_matter(w, "截止：1天\n")
    before = await w.deps.matters.get(matter)
    assert before is not None
    assert "只能延后" in await w.send("p1", f"议题 延期 {matter} 2024-01-01 18:00")
    assert "只有议题组织者" in await w.send("w1", f"议题 延期 {matter} 2天")
    assert "截止时间延至" in await w.send("p1", f"议题 延期 {matter} 2天")
    after = await w.deps.matters.get(matter)
    assert after is not None and after.closes_at == before.closes_at + 2 * 86400
    links = await all_links(w, matter)
    assert (await w.vote(links[0], 0))[0] == 200
    assert "已撤销：选项有误" in await w.send("p1", f"议题 撤销 {matter} 选项有误，重新发起")
    status, page = await w.vote(links[1], 0)
    assert status == 410 and "已撤销" in page
    with_result = await w.deps.matters.get(matter)
    assert with_result is not None and with_result.status is Status.CANCELLED
    assert not with_result.result  # a withdrawn matter's ballots are never counted
    actions = [(e.actor, e.action, e.outcome) for e in await w.ctx.audit.entries()]
    assert ("p1", "deliberation.change", "ok") in actions
    assert ("w1", "deliberation.change", "refused") in actions
    assert ("p1", "deliberation.cancel", "ok") in actions


async def test_concurrent_double_posts_count_each_household_once(w: World) -> None:
    """Every link posted twice at the same moment: one ballot per household, none lost."""
    import asyncio

    await add_households(w.collect, "w1", "东关街", 15, with_child=False)
    await add_households(w.collect, "w2", "西关街", 15, first=16, with_child=False)
    matter = await open_matter(w)
    links = await all_links(w, matter)
    forms = []
    for link in links:
        async with w.http.get(link) as page:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text())
        assert csrf
        forms.append((link, {"option": "0", "csrf": csrf.group(1)}))
    answers = await asyncio.gather(*(w.post(link, form) for link, form in forms * 2))
    assert sum(status == 200 for status, _ in answers) == 30
    assert sum(status == 409 and "已经投过票" in page for status, page in answers) == 30
    assert await w.deps.matters.turnout(matter) == 30
    assert len(await w.deps.matters.entries(matter)) == 30
