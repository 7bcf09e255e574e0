"""The tamper-evident ballot record: receipts prove inclusion against the published head;
altering any stored ballot breaks the chain; due times open and close matters once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from deliberation import chain
from deliberation.jobs import run_due
from deliberation.models import Status
from deliberation.service import MatterService
from tests.deliberation.conftest import World, receipts
from tests.deliberation.test_matters import all_links, open_matter, six_households


async def closed_with_ballots(w: World) -> tuple[str, list[str]]:
    await six_households(w)
    matter = await open_matter(w)
    pages = [(await w.vote(link, n % 3))[1] for n, link in enumerate(await all_links(w, matter))]
    assert "表决结果" in await w.send("p1", f"议题 结束 {matter}")
    return matter, receipts(pages)


async def test_receipt_proves_inclusion_against_published_head(
        w: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    matter, held = await closed_with_ballots(w)
    async with w.http.get(f"{w.base}/matter/{matter}/record.json") as page:
        record = await page.json()
    assert len(record["entries"]) == 6 and len(record["head"]) == 64
    closing = [d.content for d in w.sim.app_messages_to("p1") if "表决结果" in d.content]
    assert record["head"] in closing[-1]  # the head is published with the result
    text = json.dumps(record)
    assert not any(v.vid in text for v in await w.deps.matters.roll(matter))  # nobody named
    path = tmp_path / "record.json"
    path.write_text(text, encoding="utf-8")
    for receipt in held:
        found = chain.prove(chain.Receipt.parse(receipt), matter,  # type: ignore[arg-type]
                            record["roll_hash"], record["entries"], record["head"])
        assert found.ok and found.counted
        capsys.readouterr()
        assert main(["deliberation", "verify-receipt", str(path), receipt]) == 0
        assert "该票已计入结果" in capsys.readouterr().out
    async with w.http.get(f"{w.base}/receipt", params={"r": held[0]}) as page:
        assert page.status == 200 and "该票已计入结果" in await page.text()
    forged = held[0][:-4] + "0000"
    assert main(["deliberation", "verify-receipt", str(path), forged]) == 1
    # a receipt against a published record whose head does not match its entries
    altered = dict(record, entries=[record["entries"][1], *record["entries"][1:]])
    found = chain.prove(chain.Receipt.parse(held[2]), matter,  # type: ignore[arg-type]
                        altered["roll_hash"], altered["entries"], altered["head"])
    assert not found.ok and "链头不符" in found.message


@pytest.mark.parametrize("position", [0, 3, 5])
async def test_altering_any_stored_ballot_breaks_the_chain(w: World, position: int) -> None:
    matter, held = await closed_with_ballots(w)
    service = MatterService(w.deps)
    assert await service.verify_stored(matter)
    key = w.deps.keys.entries(matter)
    original = json.loads(await w.ctx.redis.lindex(key, position))
    original["option"] = (original["option"] + 1) % 3
    await w.ctx.redis.lset(key, position, chain.canonical(original))
    assert not await service.verify_stored(matter)
    found = await service.check_receipt(held[position])
    assert not found.ok and "链头不符" in found.message


async def test_due_times_open_and_close_once(w: World) -> None:
    await six_households(w)
    reply = await w.send("p1", "议题\n村：东关村\n标题：修建村口道路\n开始：2小时\n截止：1天\n")
    assert "将于" in reply and "开始" in reply, reply
    matter = (await w.deps.matters.in_village("141181001001"))[0]
    assert not [d for d in w.sim.app_messages_to("w1") if matter in d.content]
    assert await run_due(w.deps) == 0
    w.ctx.clock.shift[0] += 3 * 3600  # type: ignore[attr-defined]
    assert await run_due(w.deps) == 1 and await run_due(w.deps) == 0
    opened = await w.deps.matters.get(matter)
    assert opened is not None and opened.status is Status.OPEN
    links = await all_links(w, matter)
    for link in links[:4]:
        assert (await w.vote(link, 0))[0] == 200
    w.ctx.clock.shift[0] += 86400  # type: ignore[attr-defined]
    assert sum([await run_due(w.deps), await run_due(w.deps)]) == 1
    closed = await w.deps.matters.get(matter)
    assert closed is not None and closed.status is Status.CLOSED
    assert closed.result["present"] == 4 and closed.closed_by == "system"
    assert await w.deps.matters.due_now(w.deps.now()) == []


async def test_a_closed_matter_is_counted_and_announced_once(w: World) -> None:
    import asyncio

    await six_households(w)
    matter = await open_matter(w)
    for link in (await all_links(w, matter))[:5]:
        await w.vote(link, 0)
    assert await w.deps.matters.transition(matter, Status.OPEN, Status.CLOSED)
    services = [MatterService(w.deps) for _ in range(4)]  # as if in four processes
    await asyncio.gather(*(s.finalise(matter, by="system") for s in services))
    closed = await w.deps.matters.get(matter)
    assert closed is not None and closed.result["present"] == 5
    assert len(closed.notice_ids) == 2  # the opening and ONE result notice
    assert await services[0].verify_stored(matter)
