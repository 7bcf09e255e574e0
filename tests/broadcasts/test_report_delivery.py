"""Reports to the officer survive passing WeCom failures: every part arrives, once.

Seen in CI: one HTTP 502 on message/send dropped the rest of a final report, so the names
of groups in 状态不明 never reached the officer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.wecom.simulator import FaultConfig
from broadcasts.report import REPORT_TRIES, tell
from tests.broadcasts.conftest import COUNTY_OFFICER, Env

MakeEnv = Callable[..., Awaitable[Env]]


async def test_every_part_of_a_report_arrives_once_despite_server_errors(
    make_env: MakeEnv,
) -> None:
    env = await make_env(speed=50)
    parts = [f"【结束报告】第 {i} 部分：测试群{i}" for i in range(1, 9)]
    env.sim.set_faults(FaultConfig(rate=0.4, weights={"5xx": 1.0}, seed=11,
                                   apis=frozenset({"message/send"})))
    await tell(env.rt, COUNTY_OFFICER, parts)
    env.sim.set_faults(FaultConfig())
    got = [d.content for d in env.sim.app_messages_to(COUNTY_OFFICER)]
    assert got == parts
    assert env.sim.records.fault_counts["5xx"] >= 2  # failures were injected and retried
    assert env.sim.calls("message/send") == len(parts) + env.sim.records.fault_counts["5xx"]


async def test_a_part_that_keeps_failing_does_not_stop_the_next(make_env: MakeEnv) -> None:
    env = await make_env(speed=50)
    env.sim.set_faults(FaultConfig(rate=1.0, weights={"5xx": 1.0},
                                   apis=frozenset({"message/send"})))
    await tell(env.rt, COUNTY_OFFICER, ["第一部分", "第二部分"])
    assert env.sim.app_messages_to(COUNTY_OFFICER) == []
    assert env.sim.calls("message/send") == 2 * REPORT_TRIES  # both parts tried in full
