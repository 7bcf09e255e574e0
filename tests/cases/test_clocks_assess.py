"""Response clocks escalate a case nobody took (township, then county) exactly once with
several runners and across a runner's crash; the assessment table from the same cases."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
import redis.asyncio as aioredis

from bot.audit import AuditLog
from bot.clock import Clock, make_clock
from bot.keys import Keys
from bot.settings import Settings
from cases import clocks, escalate
from cases.assess import assess, write_csv, write_xlsx
from cases.clocks import ClockRunner
from cases.deps import CasesDeps
from cases.models import Status
from cases.service import CaseService
from registry.models import Level
from registry.store import Registry
from tests.cases.conftest import FAST, G01, G02, TOWNSHIP, Chat


@pytest.fixture
def chat_clock() -> Clock:
    return make_clock(FAST, 0.0)


async def _runners(deps: CasesDeps, n: int, until: Callable[[], bool]) -> list[ClockRunner]:
    runners = [ClockRunner(deps, escalate.fire) for _ in range(n)]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    for _ in range(200):
        if until():
            break
        await asyncio.sleep(0.05)
    for r in runners:
        r.stop()
    await asyncio.gather(*tasks)
    return runners


async def test_nobody_takes_it_township_then_county_once_with_three_runners(chat: Chat) -> None:
    number = (await chat.service.report("w1", "有人持刀闹事，紧急")).case.id
    deps = chat.deps

    def county_told() -> bool:
        return any(f"【超时升级 {number}】" in m for m in chat.messages_to("s2"))

    runners = await _runners(deps, 3, county_told)
    assert county_told()
    township = [m for m in chat.messages_to("s1") if f"【超时升级 {number}】" in m]
    county = [m for m in chat.messages_to("s2") if f"【超时升级 {number}】" in m]
    assert len(township) == 1 and len(county) == 1  # three runners, once each
    case = await deps.store.get(number)
    assert case is not None and case.escalation == 2 and case.escalated_to == ("s1", "s2")
    errors = [e for r in runners for e in r.lateness]
    assert len(errors) == 2  # two clocks fired, each by exactly one runner
    assert "接单" not in "".join(chat.messages_to("p2"))
    # the supervisors' overdue view lists it; an officer elsewhere sees nothing
    assert [c.id for c in await chat.service.overdue("s1")] == [number]
    assert "【超时】" in await chat.send("s2", "超时事件") and number in await chat.send(
        "s1", "我的事件")
    assert await chat.service.overdue("p2") == []
    # the supervisor may now take it
    assert (await chat.service.accept("s1", number)).status is Status.ACCEPTED


async def test_a_taken_case_does_not_escalate(chat: Chat) -> None:
    number = (await chat.service.report("w1", "有人持刀闹事，紧急")).case.id
    await chat.service.accept("p1", number)
    due = (await chat.deps.store.get(number)).respond_due  # type: ignore[union-attr]
    await _runners(chat.deps, 1, lambda: chat.deps.now() > due + 10)
    assert not chat.messages_to("s1")


async def test_a_clock_held_by_a_crashed_runner_fires_after_its_lease(chat: Chat) -> None:
    number = (await chat.service.report("w1", "有人持刀闹事，紧急")).case.id
    deps = chat.deps
    case = await deps.store.get(number)
    assert case is not None
    await asyncio.sleep(chat_clock_real(deps, case.respond_due - deps.now() + 1))
    shard = clocks.shard_of(deps, case.number)
    claimed = await clocks.claim(deps, shard)  # a runner claims it ... and dies
    assert [c.number for c in claimed] == [case.number]
    assert await clocks.claim(deps, shard) == []  # in flight: nobody else takes it yet
    lease = deps.config.clock_lease_seconds
    await asyncio.sleep(chat_clock_real(deps, lease + 1))
    await _runners(deps, 2, lambda: bool(chat.messages_to("s1")))
    assert len([m for m in chat.messages_to("s1") if number in m]) == 1


def chat_clock_real(deps: CasesDeps, sim_seconds: float) -> float:
    return max(0.0, deps.clock.real(sim_seconds))


async def test_assessment_per_node_and_officer(
        chat: Chat, tmp_path: Path) -> None:
    svc = chat.service
    start = chat.deps.now() - 1
    a = (await svc.report("w1", "消防通道堆物")).case.id
    b = (await svc.report("w1", "邻里纠纷 争吵")).case.id
    c = (await svc.report("w2", "@" + G02 + " 路灯坏了")).case.id
    await svc.accept("p1", a)
    await svc.close("p1", a, "已清理")
    await svc.apply_rating("w1", (await chat.deps.store.get(a)), "满意")  # type: ignore[arg-type]
    await svc.transfer("p1", b, "调解")
    await svc.close("w1", b, "调解成功 网格 人民调解")
    del c  # never taken
    result = await assess(chat.deps, start=start, end=chat.deps.now() + 1, level=Level.GRID,
                          under=TOWNSHIP)
    rows = {r.key: r for r in result.by_node}
    assert rows[G01].cases == 2 and rows[G02].cases == 1
    assert rows[G01].disputes == 1 and rows[G01].disputes_settled_in_grid_share == 1.0
    assert rows[G01].satisfaction_rate == 1.0 and rows[G02].response_rate == 0.0
    assert rows[G02].on_time_close_rate is None  # nothing closed: no figure, not 0 %
    town = await assess(chat.deps, start=start, end=chat.deps.now() + 1,
                        level=Level.TOWNSHIP)
    assert [r.cases for r in town.by_node if r.key == TOWNSHIP] == [3]
    officers = {r.key: r for r in result.by_officer}
    assert officers["p1"].cases >= 1 and "a1" in officers  # a1 was sent c and took nothing
    write_csv(result, tmp_path / "a.csv")
    write_xlsx(result, tmp_path / "a.xlsx")
    text = (tmp_path / "a.csv").read_text(encoding="utf-8-sig")
    assert "响应率" in text and "消防" not in text  # figures only, no case text
    assert list(csv.reader(text.splitlines()))[1][0] == "按节点"
    sheet = openpyxl.load_workbook(tmp_path / "a.xlsx")["按节点"]
    assert sheet.cell(1, 2).value == "名称" and sheet.max_row == 1 + len(result.by_node)


async def test_service_without_wecom_still_records(redis: aioredis.Redis, keys: Keys,
                                                   make_settings: Callable[..., Settings],
                                                   world: Registry) -> None:
    clock = Clock()
    deps = CasesDeps.build(redis, keys, clock, make_settings(), world,
                           AuditLog(redis, keys, clock), None)
    case = (await CaseService(deps).report("w1", "井盖丢失")).case
    assert case.node == G01 and case.officers == ("p1", "a1")
