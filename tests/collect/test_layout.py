"""The compact layout of 一标三实 records: data of the earlier layout still reads, saves and the
upgrade pass move it over, and the export's fast rows equal the reference rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from openpyxl import load_workbook

from bot.audit import AuditLog
from bot.clock import Clock
from bot.redis import cluster_of
from bot.rtypes import hmapping
from bot.settings import Settings
from collect.clusterread import get_direct
from collect.deps import CollectDeps
from collect.export import ExportQuery, XlsxSink, _values, columns, export, row_of
from collect.exportrows import row_maker
from collect.models import Record, RecordKind, ReviewState, decode_all
from collect.records import reveal
from collect.rotate import rotate
from collect.upgrade import upgrade
from tests.collect.conftest import Chat
from tests.collect.test_crypto import key, settings_with
from tests.collect.test_export import TOWNSHIP, read_csv, seed

KINDS = (RecordKind.PERSON, RecordKind.UNIT, RecordKind.ADDRESS)


async def all_records(deps: CollectDeps) -> list[Record]:
    ids = [f"{kind.prefix}{n}" for kind in KINDS for n in range(1, 6)]
    return await deps.store.get_many(ids)


async def to_earlier_layout(deps: CollectDeps, record: Record) -> None:
    """Store `record` as the earlier layout did: a hash, a list of JSON objects, and an
    index of all states beside the per-state ones."""
    redis, keys = deps.redis, deps.keys
    entries = await deps.store.history(record.id)
    await redis.delete(keys.record(record.id), keys.history(record.id))
    await redis.hset(keys.record(record.id), mapping=hmapping(record.to_redis()))
    for e in entries:
        await redis.rpush(keys.history(record.id), json.dumps({
            "at": e.at, "actor": e.actor, "kind": e.kind.value, "reason": e.reason,
            "source": e.source, "changes": [[c.field, c.old, c.new] for c in e.changes]},
            ensure_ascii=False))
    for node in (n.code for n in await deps.registry.path(record.node)):
        await redis.zadd(keys.under(node, record.kind.value), {record.id: record.updated_at})


async def export_text(deps: CollectDeps, tmp_path: Path, kind: RecordKind) -> list[list[str]]:
    out = tmp_path / f"{kind.value}.csv"
    await export(deps, "p1", ExportQuery(TOWNSHIP, kind), out)
    return read_csv(out)


async def test_earlier_layout_reads_saves_and_upgrades(chat: Chat, tmp_path: Path,
                                                        redis: aioredis.Redis) -> None:
    deps = await seed(chat)
    records = await all_records(deps)
    histories = {r.id: await deps.store.history(r.id) for r in records}
    exported = {kind: await export_text(deps, tmp_path, kind) for kind in KINDS}
    for record in records:
        await to_earlier_layout(deps, record)
    assert await redis.type(deps.keys.record("P2")) == "hash"
    assert await all_records(deps) == records, "the earlier layout reads the same"
    assert {r.id: await deps.store.history(r.id) for r in records} == histories
    assert {kind: await export_text(deps, tmp_path, kind) for kind in KINDS} == exported
    pending = await deps.store.count(TOWNSHIP, RecordKind.PERSON, ReviewState.PENDING)
    assert pending == 2 and await deps.store.count(TOWNSHIP, RecordKind.PERSON) == 3

    assert "已核查" in await chat.send("p1", "核查 P2 通过")  # a save moves P2 over
    assert await redis.type(deps.keys.record("P2")) == "string"
    assert await redis.type(deps.keys.history("P2")) == "string"
    history = await deps.store.history("P2")
    assert history[:-1] == histories["P2"] and history[-1].kind.value == "核查通过"

    report = await upgrade(deps)
    assert report.upgraded == len(records) - 1 and report.conflicts == 0
    assert report.indexes > 0, "the all-state indexes are deleted"
    for record in records:
        assert await redis.type(deps.keys.record(record.id)) == "string"
        assert await redis.type(deps.keys.history(record.id)) == "string"
        assert await redis.exists(deps.keys.under(TOWNSHIP, record.kind.value)) == 0
    assert [r for r in await all_records(deps) if r.id != "P2"] == \
        [r for r in records if r.id != "P2"]
    assert (await upgrade(deps)).upgraded == 0, "a second pass finds nothing to do"
    people = await export_text(deps, tmp_path, RecordKind.PERSON)
    assert len(people) == len(exported[RecordKind.PERSON])


@pytest.mark.parametrize("masked", [False, True])
async def test_fast_rows_equal_the_reference(chat: Chat, masked: bool) -> None:
    deps = await seed(chat)
    records = await all_records(deps)
    person = next(r for r in records if r.id == "P3")
    # a value sealed under a key that is gone: both paths flag it the same way
    retired = replace(person, id="P9", sealed={**person.sealed, "phone": "v1:gone:a:AAAA"})
    for record in [*records, retired]:
        cols = columns(record.kind)
        fast = row_maker(deps.cipher, cols, masked)(json.loads(record.pack()))
        assert fast == row_of(record, _values(deps, record, masked), cols), record.id
    unit = next(r for r in records if r.kind is RecordKind.UNIT)
    row = row_maker(deps.cipher, columns(RecordKind.UNIT), masked)(json.loads(unit.pack()))
    assert row[1].startswith("'=HYPERLINK"), "formula-looking text is neutralised"


async def test_rows_come_whole_when_the_slot_map_is_out_of_date(chat: Chat) -> None:
    deps = await seed(chat)
    records = await all_records(deps)
    ids = [r.id for r in records]
    cluster = cluster_of(deps.redis)
    if cluster is not None:  # the client believes P1's slot is on a primary that lacks it
        keys = deps.keys.records(ids)
        assert await get_direct(cluster, keys) == [r.pack() for r in records]
        slot = cluster.keyslot(deps.keys.record("P1"))
        owner = cluster.nodes_manager.slots_cache[slot][0]
        other = next(n for n in cluster.get_primaries() if n.name != owner.name)
        cluster.nodes_manager.slots_cache[slot] = [other]
        assert await get_direct(cluster, keys) is None, "MOVED: the caller falls back"
    assert await deps.store.get_packed(ids) == [r.pack() for r in records]
    assert await deps.store.get_packed(ids) == [r.pack() for r in records]


def test_a_batch_decodes_as_its_values_alone() -> None:
    assert decode_all(['[2,"P1",{"a":"b"}]', "[2]"]) == [[2, "P1", {"a": "b"}], [2]]
    with pytest.raises(ValueError):  # a damaged value fails as it would alone
        decode_all(["[2],[3", "[4]"])
    assert decode_all(['{"a":1}', "[4]"]) == [{"a": 1}, [4]], "as json.loads each"


async def test_export_without_state_is_oldest_first_across_states(chat: Chat,
                                                                   tmp_path: Path) -> None:
    deps = await seed(chat)
    assert "已核查" in await chat.send("p1", "核查 P2 通过")  # P2 now the newest
    rows = await export_text(deps, tmp_path, RecordKind.PERSON)
    people = await deps.store.get_many([row[0] for row in rows[1:]])
    assert [r.id for r in people] == [r.id for r in sorted(people, key=lambda r: r.updated_at)]
    assert [r.id for r in people][-1] == "P2" and len(people) == 3


def test_xlsx_cells_keep_markup_and_spaces(tmp_path: Path) -> None:
    sink = XlsxSink(tmp_path / "x.xlsx", ["编号", "备注"])
    values = ["A&B <c>", " 前后空格 ", "控制\x01字符", "'=1+1", "普通"]
    sink.rows([[f"P{n}", value] for n, value in enumerate(values)])
    sink.close()
    sheet = load_workbook(tmp_path / "x.xlsx", read_only=True).worksheets[0]
    assert sheet.title == "数据1"
    got = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert got[0] == ["编号", "备注"]
    assert [r[1] for r in got[1:]] == ["A&B <c>", " 前后空格 ", "控制字符", "'=1+1", "普通"]


async def test_rotation_moves_an_earlier_record_and_its_history(
        chat: Chat, redis: aioredis.Redis, make_settings: Callable[..., Settings]) -> None:
    deps = await seed(chat)
    [record] = await deps.store.get_many(["P1"])
    entries = await deps.store.history("P1")
    await to_earlier_layout(deps, record)
    spec = f"k2:{key()},{deps.settings.security.field_keys.get_secret_value()}"
    rekeyed = CollectDeps.build(deps.redis, deps.keys.keys, Clock(),
                                settings_with(make_settings, deps.settings, spec),
                                deps.registry, AuditLog(deps.redis, deps.keys.keys, Clock()))
    assert (await rotate(rekeyed)).rewritten >= 1
    assert await redis.type(deps.keys.record("P1")) == "string"
    assert await redis.type(deps.keys.history("P1")) == "string"
    assert await rekeyed.store.history("P1") == entries
    moved = await rekeyed.store.get("P1")
    assert moved is not None and reveal(moved, rekeyed.cipher) == reveal(record, deps.cipher)
