"""Exports and lookups: only 民警 covering the node; full numbers only for them; every
attempt (allowed or refused) is audited; streamed CSV/XLSX with the filters."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.audit import AuditLog
from bot.clock import Clock
from collect.deps import CollectDeps
from collect.export import CsvSink, ExportForbiddenError, ExportQuery, export
from collect.models import RecordKind, ReviewState
from tests.bot.support import gridbot_command, gridbot_env
from tests.collect.conftest import Chat, chat_deps, template
from tests.collect.leakscan import find_leaks

PEOPLE = (("142326198811110019", "13812345678", "振兴路18号3栋2单元501", "w1"),
          ("141102200506010027", "13912345670", "振兴路18号3栋2单元502", "w1"),
          ("142326197002020043", "13700001111", "阳光小区1号楼1单元101", "w2"))
TOWNSHIP = "141181001"


async def seed(chat: Chat) -> CollectDeps:
    for number, phone, address, worker in PEOPLE:
        reply = await chat.send(worker, template("人口", name="陈静", id=number,
                                                 phone=phone, address=address, type="常住"))
        assert reply.startswith("已保存")
    await chat.send("w1", template("单位", unit_name="=HYPERLINK(\"x\")超市",
                                   uscc="91110108551385082Q", legal_rep="李四",
                                   address="振兴路20号"))
    await chat.send("p1", "核查 P1 通过")
    return chat_deps(chat)


async def audit(deps: CollectDeps, action: str) -> list[tuple[str, str, str]]:
    entries = await AuditLog(deps.redis, deps.keys.keys, Clock()).entries(action=action)
    return [(e.actor, e.outcome, e.target) for e in reversed(entries)]


def read_csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text("utf-8-sig"))))


async def test_officer_exports_full_numbers_as_csv(chat: Chat, tmp_path: Path) -> None:
    deps = await seed(chat)
    out = tmp_path / "people.csv"
    rows = await export(deps, "p1", ExportQuery(TOWNSHIP, RecordKind.PERSON), out)
    table = read_csv(out)
    assert rows == 3 and len(table) == 4
    header = table[0]
    ids = {row[header.index("公民身份号码")] for row in table[1:]}
    assert ids == {p[0] for p in PEOPLE}, "the officer's file carries full numbers"
    assert {row[header.index("联系电话")] for row in table[1:]} == {p[1] for p in PEOPLE}
    assert {row[header.index("姓名")] for row in table[1:]} == {"陈静"}
    states = {row[0]: row[header.index("核查状态")] for row in table[1:]}
    assert states["P1"] == "已核查" and states["P2"] == "待核查"
    assert await audit(deps, "collect.export") == [("p1", "ok", TOWNSHIP)]


async def test_export_filters(chat: Chat, tmp_path: Path) -> None:
    deps = await seed(chat)
    out = tmp_path / "f.csv"
    verified = ExportQuery(TOWNSHIP, RecordKind.PERSON, ReviewState.VERIFIED)
    assert await export(deps, "p1", verified, out) == 1 and read_csv(out)[1][0] == "P1"
    grid = ExportQuery("141181001001-G02", RecordKind.PERSON)
    assert await export(deps, "p1", grid, out) == 1 and read_csv(out)[1][0] == "P3"
    before = ExportQuery(TOWNSHIP, RecordKind.PERSON, until=deps.now() - 3600)
    assert await export(deps, "p1", before, out) == 0 and len(read_csv(out)) == 1
    since = ExportQuery(TOWNSHIP, RecordKind.PERSON, since=deps.now() - 3600)
    assert await export(deps, "p1", since, out) == 3
    units = ExportQuery(TOWNSHIP, RecordKind.UNIT)
    assert await export(deps, "p1", units, out) == 1
    assert read_csv(out)[1][1].startswith("'=HYPERLINK"), "formula-looking text is neutralised"


async def test_xlsx_export_and_masked_export(chat: Chat, tmp_path: Path) -> None:
    deps = await seed(chat)
    out = tmp_path / "people.xlsx"
    assert await export(deps, "p1", ExportQuery(TOWNSHIP, RecordKind.PERSON, fmt="xlsx"), out) == 3
    sheet = load_workbook(out, read_only=True).worksheets[0]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    column = rows[0].index("公民身份号码")
    assert {r[column] for r in rows[1:]} == {p[0] for p in PEOPLE}
    assert all(isinstance(r[column], str) for r in rows[1:]), "IDs stay text, not numbers"
    masked = tmp_path / "masked.csv"
    await export(deps, "p1", ExportQuery(TOWNSHIP, RecordKind.PERSON, masked=True), masked)
    assert find_leaks(masked.read_text("utf-8-sig")) == []
    assert "1423**********0019" in masked.read_text("utf-8-sig")


async def test_others_can_neither_export_nor_look_up(chat: Chat, tmp_path: Path) -> None:
    deps = await seed(chat)
    out = tmp_path / "x.csv"
    for who in ("p2", "w1", "a1", "stranger"):
        with pytest.raises(ExportForbiddenError):
            await export(deps, who, ExportQuery(TOWNSHIP, RecordKind.PERSON), out)
    assert not out.exists()
    assert await audit(deps, "collect.export") == [
        ("p2", "refused", TOWNSHIP), ("w1", "refused", TOWNSHIP), ("a1", "refused", TOWNSHIP),
        ("stranger", "refused", TOWNSHIP)]
    outside = await chat.send("p2", "查询 P1")
    by_number = await chat.send("p2", f"查询 {PEOPLE[0][0]}")
    missing = await chat.send("p2", "查询 P99")
    assert outside.split("\n")[0] == by_number.split("\n")[0] == missing.split("\n")[0], \
        "out of area and not found read the same"
    assert "仅限辖区民警" in await chat.send("w1", "查询 P1")
    assert "仅限辖区民警" in await chat.send("a1", f"查询 {PEOPLE[0][0]}")
    allowed = await chat.send("p1", f"查询 {PEOPLE[0][0]}")
    assert "人口记录 P1" in allowed and "1423**********0019" in allowed
    assert "【变更记录】" in allowed
    assert await audit(deps, "collect.lookup") == [
        ("p2", "refused", "P1"), ("p2", "refused", "P1"), ("p2", "ok", ""),
        ("w1", "refused", ""), ("a1", "refused", ""), ("p1", "ok", "P1")]


async def test_export_command_line(chat: Chat, tmp_path: Path, redis_url: str) -> None:
    deps = await seed(chat)
    settings = chat.ctx.settings
    env = gridbot_env({
        "GRIDBOT_REDIS__URL": redis_url, "GRIDBOT_WECOM__CORP_ID": settings.wecom.corp_id,
        "GRIDBOT_WECOM__SECRET": "x", "GRIDBOT_WECOM__AGENT_ID": "1",
        "GRIDBOT_WECOM__TOKEN": "t", "GRIDBOT_WECOM__ENCODING_AES_KEY": "a" * 43,
        "GRIDBOT_SECURITY__FIELD_KEYS": settings.security.field_keys.get_secret_value(),
        "GRIDBOT_SECURITY__BLIND_INDEX_KEY":
            settings.security.blind_index_key.get_secret_value()})
    out = tmp_path / "cli.xlsx"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(gridbot_command("collect", "export", *args), env=env, text=True,
                              capture_output=True, timeout=60, check=False)

    common = ("--node", "孝义市/新义街道", "--type", "person", "--format", "xlsx", "--out",
              str(out))
    refused = await asyncio.to_thread(run, *common, "--as", "p2")
    assert refused.returncode == 3 and "导出被拒绝" in refused.stdout and not out.exists()
    env.update({"GRIDBOT_COLLECT__EXPORT_WORKERS": "2",  # spawned from the real entry point
                "GRIDBOT_COLLECT__EXPORT_INLINE_ROWS": "0"})
    done = await asyncio.to_thread(run, *common, "--as", "p1", "--state", "待核查",
                                   "--since", "2000-01-01")
    assert done.returncode == 0 and "已导出 2 条记录" in done.stdout, done.stderr
    assert "rows now made in 2 worker processes" in done.stderr
    sheet = load_workbook(out, read_only=True).worksheets[0]
    assert len(list(sheet.iter_rows(values_only=True))) == 3
    assert find_leaks(done.stdout + done.stderr + refused.stdout + refused.stderr) == []
    assert [a[:2] for a in await audit(deps, "collect.export")] == [("p2", "refused"),
                                                                     ("p1", "ok")]


def test_xlsx_rolls_over_to_a_new_sheet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from collect import export as export_module

    monkeypatch.setattr(export_module, "XLSX_MAX_ROWS", 3)
    sink = export_module.XlsxSink(tmp_path / "r.xlsx", ["编号", "姓名"])
    for n in range(7):
        sink.row([f"P{n}", "=1+1"])
    sink.close()
    book = load_workbook(tmp_path / "r.xlsx", read_only=True)
    sheets = [[list(r) for r in ws.iter_rows(values_only=True)] for ws in book.worksheets]
    assert [len(s) for s in sheets] == [4, 4, 2], "each sheet repeats the header"
    assert [s[0] for s in sheets] == [["编号", "姓名"]] * 3
    assert sheets[2][1] == ["P6", "=1+1"], "sinks write what they are given; row_of escapes"


@pytest.mark.parametrize("rows", [
    [["P1", "陈静", ""], ["P2", "王伟", "'=1"]],
    [["P1", "a,b", "c"]], [["P1", 'say "x"', "c"]], [["P1", "two\nlines", ""]],
    [["P1", "cr\rhere", ""]], [["P1", "", ""], [""]], [["P1", "nul\0", "x"]]])
def test_csv_rows_are_what_csv_writer_writes(tmp_path: Path, rows: list[list[str]]) -> None:
    """The sink joins plain rows itself; the file must be csv.writer's, byte for byte."""
    sink = CsvSink(tmp_path / "out.csv", ["编号", "姓名", "备注"])
    sink.rows(rows)
    sink.rows(rows[:1])
    sink.close()
    expected = io.StringIO(newline="")
    writer = csv.writer(expected)
    writer.writerows([["编号", "姓名", "备注"], *rows, *rows[:1]])
    assert (tmp_path / "out.csv").read_bytes() == expected.getvalue().encode("utf-8-sig")

