"""Large exports make their rows in worker processes: the file is the one the exporting
process alone writes, sheets roll over across batches made in different processes, a
record that left the asked state is left out before any worker sees it, and a failure in
a worker fails the export and is audited."""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from collect import export as export_module
from collect.deps import CollectDeps
from collect.export import ExportQuery, columns, export
from collect.exportpool import RowPool
from collect.exportrows import Renderer, RenderSpec
from collect.models import RecordKind, ReviewState, packed_state
from tests.collect.conftest import Chat
from tests.collect.test_export import TOWNSHIP, audit, read_csv, seed
from tests.collect.test_layout import all_records, to_earlier_layout


def with_workers(deps: CollectDeps, workers: int) -> CollectDeps:
    """`workers` processes, from the second row on."""
    collect = deps.settings.collect.model_copy(update={"export_workers": workers,
                                                       "export_inline_rows": 1})
    return replace(deps, settings=deps.settings.model_copy(update={"collect": collect}))


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """One record a batch: three people make three batches."""
    monkeypatch.setattr(export_module, "BATCH", 1)


def sheets_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as book:
        return {name: book.read(name) for name in book.namelist()}


@pytest.mark.usefixtures("small_batches")
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_workers_write_the_file_the_exporting_process_writes(
        chat: Chat, tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    deps = await seed(chat)
    monkeypatch.setattr(export_module, "XLSX_MAX_ROWS", 2)  # a sheet ends inside the pool
    await to_earlier_layout(deps, next(r for r in await all_records(deps) if r.id == "P3"))
    query = ExportQuery(TOWNSHIP, RecordKind.PERSON, fmt=fmt)  # type: ignore[arg-type]
    alone, pooled = tmp_path / f"alone.{fmt}", tmp_path / f"pooled.{fmt}"
    with caplog.at_level(logging.INFO, logger="collect.exportpool"):
        assert await export(with_workers(deps, 0), "p1", query, alone) == 3
        assert "worker processes" not in caplog.text
        assert await export(with_workers(deps, 2), "p1", query, pooled) == 3
        assert "rows now made in 2 worker processes" in caplog.text
    if fmt == "csv":
        assert pooled.read_bytes() == alone.read_bytes()
        assert sorted(row[0] for row in read_csv(pooled)[1:]) == ["P1", "P2", "P3"]
    else:
        assert sheets_of(pooled) == sheets_of(alone)
        assert "xl/worksheets/sheet2.xml" in sheets_of(pooled), "three rows, two a sheet"


async def test_the_pool_makes_rows_in_other_processes(chat: Chat) -> None:
    deps = await seed(chat)
    packed = await deps.store.get_packed(["P1", "P2", "P3"])
    spec = RenderSpec(deps.cipher, columns(RecordKind.PERSON), False, "xlsx")
    async with RowPool(spec, workers=2, inline_rows=0) as pool:
        made = [pool.submit(packed[i:i + 1], 2 + i) for i in range(3)]
        assert pool.depth == 4, "two batches in flight per worker"
        texts = [await text for text in made]
    here = Renderer(spec)
    assert texts == [here(packed[i:i + 1], 2 + i) for i in range(3)]
    assert '<row r="3">' in texts[1] and "142326198811110019" in "".join(texts)


@pytest.mark.usefixtures("small_batches")
async def test_a_worker_that_fails_fails_the_export_and_is_audited(
        chat: Chat, tmp_path: Path) -> None:
    deps = with_workers(await seed(chat), 2)
    await deps.redis.set(deps.keys.record("P3"), '[2,"P3","person"')  # damaged: cut short
    with pytest.raises(ValueError):
        await export(deps, "p1", ExportQuery(TOWNSHIP, RecordKind.PERSON), tmp_path / "x.csv")
    assert [a[:2] for a in await audit(deps, "collect.export")] == [("p1", "error")]


async def test_a_record_that_left_the_state_is_not_exported(chat: Chat, tmp_path: Path) -> None:
    deps = await seed(chat)  # P1 verified, P2 and P3 pending
    stale = deps.keys.under(TOWNSHIP, RecordKind.PERSON.value, ReviewState.VERIFIED.value)
    await deps.redis.zadd(stale, {"P2": 1.0})  # an index entry its record has left
    out = tmp_path / "verified.csv"
    query = ExportQuery(TOWNSHIP, RecordKind.PERSON, ReviewState.VERIFIED)
    assert await export(deps, "p1", query, out) == 1
    assert [row[0] for row in read_csv(out)[1:]] == ["P1"]


@pytest.mark.parametrize("head", [
    ["P1", "person", "141181001001-G01"], ['P"1', "person", "a\\"], ["P1", "person", "节点，一"]])
def test_the_state_read_off_a_packed_head_is_the_decoded_one(head: list[str]) -> None:
    for state in ReviewState:
        packed = json.dumps([2, *head, state.value, {"a": "b"}], ensure_ascii=False,
                            separators=(",", ":"))
        assert packed_state(packed) == state.value
    assert packed_state('[2, "P1", "person", "n", "verified", {}]') == "verified", "spaced"
