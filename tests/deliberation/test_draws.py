"""Draws by lot: list and seed hash published first, the draw recomputed bit for bit by
`gridbot deliberation verify-draw` and the page; one added participant changes everything."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.cli import main
from deliberation import lottery
from tests.deliberation.conftest import World
from tests.deliberation.data import add_households

COMMITTEE = ("村务监督委员会-张", "村民代表-李")  # each member's secret value


async def forty_households(w: World) -> None:
    await add_households(w.collect, "w1", "东关街", 20, with_child=False)
    await add_households(w.collect, "w2", "西关街", 20, first=21, with_child=False)


async def fixed_draw(w: World) -> str:
    commitments = "、".join(lottery.sha256(v) for v in COMMITTEE)
    reply = await w.send("p1", "抓阄\n村：东关村\n标题：新宅基地分配\n物品：1-28号地块\n"
                         f"方式：两段\n公开值来源：12月10日深证成指收盘点位\n承诺：{commitments}\n"
                         "附加值：7、42")
    found = re.search(r"抓阄 (ZJ\d+)「新宅基地分配」名单已固定：40户，物品28项", reply)
    assert found, reply
    assert re.search(r"种子哈希 [0-9a-f]{64}", reply) and re.search(r"名单哈希 [0-9a-f]{64}",
                                                                      reply)
    return found.group(1)


async def test_draw_28_plots_among_40_households_verifies_bit_for_bit(
        w: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await forty_households(w)
    draw = await fixed_draw(w)
    async with w.http.get(f"{w.base}/draw/{draw}.json") as page:
        published_first = await page.json()
    assert "secret" not in published_first and "seed" not in published_first
    assert "开抽" in await w.send("p1", f"抓阄 开抽 {draw}")  # refused: reveals missing
    assert "不符" in await w.send("p2", f"抓阄 揭示 {draw} 不是承诺的值")
    for value in COMMITTEE:
        assert "已收到揭示值" in await w.send("w1", f"抓阄 揭示 {draw} {value}")
    assert "请先登记公开值" in await w.send("p1", f"抓阄 开抽 {draw}")
    assert "只有负责东关村的民警" in await w.send("p2", f"抓阄 公开值 {draw} 1")
    assert "公开值已登记" in await w.send("p1", f"抓阄 公开值 {draw} 10523.41")
    result = await w.send("p1", f"抓阄 开抽 {draw}")
    assert re.search(r"结果：\n1\. \d{3} \S\*+（\S+号） → \d+号地块", result), result
    async with w.http.get(f"{w.base}/draw/{draw}.json") as page:
        record = await page.json()
    assert lottery.fixed_part(record) == lottery.fixed_part(published_first)
    assert len(record["allocation"]) == 28 and len({i for _, i in record["allocation"]}) == 28
    assert len(record["participants"]) == 40 and record["contributions"] == ["7", "42"]
    # the command line recomputes it from the published file alone
    path = tmp_path / "draw.json"
    path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    capsys.readouterr()
    assert main(["deliberation", "verify-draw", str(path), "--show"]) == 0
    printed = capsys.readouterr().out
    assert "核对一致：28项分配与公示完全相同" in printed
    shown = re.findall(r"^\d+\. (.+) → (.+)$", printed, re.M)
    assert [list(p) for p in shown] == record["allocation"]  # bit for bit
    async with w.http.get(f"{w.base}/draw/{draw}/verify") as page:
        assert page.status == 200 and "核对一致" in await page.text()
    # one participant added after the seed hash was published
    grown = {**record, "participants": [*record["participants"], "041 赵*（北关街1号）"]}
    check = lottery.verify(grown)
    assert "名单或物品与事先公布的名单哈希不符（公布后被改动）" in check.problems
    same = sum(a == list(b) for a, b in zip(record["allocation"], check.outcome.allocation,
                                            strict=True))
    assert same <= 3, f"{same} of 28 plots went to the same household"
    before, after = dict(map(tuple, record["allocation"])), dict(check.outcome.allocation)
    kept = sum(1 for p in before if after.get(p) == before[p])
    assert kept <= 10, f"{kept} of 28 households kept their plot"  # chance level: ~0.7
    assert list(check.outcome.order[:40]) != record["order"]
    path.write_text(json.dumps(grown, ensure_ascii=False), encoding="utf-8")
    assert main(["deliberation", "verify-draw", str(path)]) == 1
    # a changed seed secret, a changed result: each caught
    for name, value in (("secret", "0" * 64), ("allocation", record["allocation"][::-1])):
        check = lottery.verify({**record, name: value})
        assert not check.ok, name
    assert "已开抽" in await w.send("p1", f"抓阄 公开值 {draw} 1")


def test_shuffle_is_a_documented_fisher_yates() -> None:
    """Stable vector: the algorithm may never change under a published draw."""
    seed = lottery.derive_seed("0" * 64, "s", "1", [])
    out = lottery.allocate(seed, [f"P{i}" for i in range(5)], ["a", "b", "c"], True)
    again = lottery.allocate(seed, [f"P{i}" for i in range(5)], ["a", "b", "c"], True)
    assert out == again and sorted(out.order) == [f"P{i}" for i in range(5)]
    assert sorted(i for _, i in out.allocation) == ["a", "b", "c"]
    # every position reachable: 6000 small shuffles cover all 6 permutations of 3 evenly
    seen: dict[tuple[int, ...], int] = {}
    for n in range(6000):
        perm = tuple(lottery.shuffle(n.to_bytes(4, "big"), "order", 3))
        seen[perm] = seen.get(perm, 0) + 1
    assert len(seen) == 6 and all(800 < c < 1200 for c in seen.values()), seen
