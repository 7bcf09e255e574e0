"""Planner math: the floor the ceilings allow, demand, polling budget, the reasons shown."""

from __future__ import annotations

import pytest

from bot.settings import BroadcastSettings, CeilingSettings
from broadcasts.models import PlannedGroup
from broadcasts.planner import (
    Demand,
    Forecast,
    demand_of,
    history_share,
    machine_floor,
    poll_interval,
    window_floor,
)

C = CeilingSettings()


def group(i: int, kind: str, owner: str = "", members: int = 100, key: str = "") -> PlannedGroup:
    return PlannedGroup(f"c{i}", f"群{i}", kind, "n", ("root", "n"), owner=owner, members=members,
                        webhook_key=key)


@pytest.mark.parametrize(("amount", "limit", "used", "expected"), [
    (0, 100, 0, 0.0), (100, 100, 0, 0.0), (101, 100, 0, 60.0), (200, 100, 0, 60.0),
    (201, 100, 0, 120.0), (50, 100, 60, 60.0), (40, 100, 60, 0.0),
])
def test_window_floor(amount: int, limit: int, used: int, expected: float) -> None:
    assert window_floor(amount, limit, 60.0, used) == expected


def test_appchat_person_times_set_the_floor() -> None:
    d = Demand(appchat_groups=316, appchat_person_times=26_195)
    floor = machine_floor(d, C)
    assert floor.seconds == 60.0 and floor.binding == "应用群聊每分钟人次"
    # past the hourly ceiling the next window is an hour away
    big = machine_floor(Demand(appchat_groups=900, appchat_person_times=180_000), C)
    assert big.seconds == 3600.0 and big.binding == "应用群聊每小时人次"
    # what earlier notices left in the window counts
    assert machine_floor(d, C, used={"appchat:pt:m": 15_000}).seconds == 120.0
    assert machine_floor(Demand(appchat_groups=1, appchat_person_times=6_000), C,
                         used={"appchat:pt:m": 15_000}).seconds == 60.0


def test_floor_adds_round_trips_and_robot_limits() -> None:
    d = Demand(customer_groups=10, tasks=4, owners=4, webhook_groups=2, most_per_robot=1)
    floor = machine_floor(d, C, latency=0.1)
    assert floor.seconds == pytest.approx(0.2)  # task, then the owner's message
    assert floor.binding == ""
    crowded = machine_floor(Demand(webhook_groups=45, most_per_robot=45), C)
    assert crowded.seconds == 120.0 and "机器人" in crowded.binding


def test_demand_counts_owner_tasks_of_at_most_2000_groups() -> None:
    groups = ([group(i, "customer_group", owner="big") for i in range(4500)]
              + [group(5000 + i, "customer_group", owner=f"o{i}") for i in range(3)]
              + [group(6000, "appchat", members=300), group(6001, "appchat", members=0)]
              + [group(7000, "webhook", key="k1"), group(7001, "webhook", key="k1")])
    d = demand_of(groups)
    assert (d.customer_groups, d.tasks, d.owners) == (4503, 3 + 3, 4)
    assert (d.appchat_groups, d.appchat_person_times, d.largest_appchat) == (2, 301, 300)
    assert (d.webhook_groups, d.most_per_robot, d.total) == (2, 2, 4507)


def test_poll_interval_fits_the_reserved_budget() -> None:
    s = BroadcastSettings()
    assert poll_interval(100, s) == s.poll_interval_seconds
    budget = C.api_calls_per_minute * s.poll_budget_share * 0.8
    wide = poll_interval(3006, s)
    assert 3006 * 60 / wide <= budget + 1e-9
    assert wide > s.poll_interval_seconds


def test_forecast_says_why_the_deadline_cannot_be_met() -> None:
    d = Demand(appchat_groups=900, appchat_person_times=180_000, customer_groups=500, tasks=300,
               owners=300)
    spent = tuple(f"c{i}" for i in range(37))
    f = Forecast(d, machine_floor(d, C), 600.0, 20.0, quota_exhausted=spent, no_officer=2,
                 confirm_within=0.985, confirm_p90=330.0)
    problems = "；".join(f.problems)
    assert "37 个群本月群发次数已用完" in problems
    assert "应用群聊每小时人次" in problems and "60 分钟" in problems
    assert "300 位群主" in problems and "98.5%" in problems
    assert "2 个群所在网格没有登记民警" in problems
    assert "5 分 30 秒" in f.text()
    assert Forecast(Demand(webhook_groups=3, most_per_robot=1), machine_floor(
        Demand(webhook_groups=3, most_per_robot=1), C), 600.0, 20.0).problems == []


def test_history_share_needs_enough_samples() -> None:
    assert history_share([60.0] * 19, 600) == (None, None)
    share, p90 = history_share([float(x) for x in range(0, 1000, 10)], 600)
    assert share == pytest.approx(0.61) and p90 == 900.0
