"""Data the console tests look at: a pending 一标三实 record and an open case in a grid."""

from __future__ import annotations

from cases.deps import CasesDeps
from cases.service import CaseService
from collect.access import Actor
from collect.deps import CollectDeps
from collect.models import Record, RecordKind
from collect.results import Outcome, Submission
from collect.service import CollectService
from tests.console.conftest import Console

RECORD_ID_NUMBER = "360426199101010071"  # python-stdnum's vector: valid, never shown in full
RECORD_PHONE = "15800002222"


async def pending_record(console: Console) -> Record:
    env = console.env
    deps = CollectDeps.build(env.redis, env.keys, env.clock, env.settings, env.rt.registry,
                             env.rt.audit)
    grid = await env.rt.registry.node(console.grid_worker_grid)
    assert grid is not None
    values = {"name": "周小梅", "id_number": RECORD_ID_NUMBER, "phone": RECORD_PHONE,
              "population_type": "常住人口", "relation": "户主", "node": grid.code,
              "address": f"{grid.name}振兴路18号3栋2单元601室"}
    result = await CollectService(deps).submit(Submission(
        RecordKind.PERSON, values, Actor.staff(console.grid_worker), "test", confirmed=True,
        override=True))
    assert result.outcome is Outcome.STORED, result
    assert result.record is not None
    return result.record


async def open_case(console: Console, text: str = "消防通道被杂物堵住") -> str:
    env = console.env
    deps = CasesDeps.build(env.redis, env.keys, env.clock, env.settings, env.rt.registry,
                           env.rt.audit, env.rt.wecom)
    outcome = await CaseService(deps).report(console.grid_worker, text)
    return outcome.case.id
