"""Streaming export of records for the station (CSV or XLSX), constant memory at any size.

Records are read in index batches (ZRANGE by rank, then one MGET, or a pipeline of GETs on a
cluster) as positional rows (no object per record) and written a batch at a time: csv.writer
into the file, or collect/xlsxstream.py's inline-string sheets with a new sheet every
1,048,575 rows. `row_of` (from a Record) is the reference a row is checked against in the
tests; `row_maker` is the same mapping from a packed row. Only 民警 covering the node may
export; the file carries full ID and phone numbers (or masked ones with `masked=True`).
Every export and every refusal is one audit entry.
"""

from __future__ import annotations

import asyncio
import csv
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from collect import models as at
from collect.crypto import FieldCipher, FieldCryptoError
from collect.deps import CollectDeps
from collect.models import Record, RecordKind, ReviewState
from collect.records import reveal
from collect.replies import when
from collect.xlsxstream import StreamingBook

T = TypeVar("T")
Format = Literal["csv", "xlsx"]
XLSX_MAX_ROWS = 1_048_575  # one header row per sheet
BATCH = 2000
_COMMON_HEAD = (("id", "编号"),)
_COMMON_TAIL = (("status", "状态"), ("_state", "核查状态"), ("_note", "退回原因"),
                ("_node", "所属节点"), ("address_id", "地址编号"), ("_created", "登记时间"),
                ("_created_by", "登记人"), ("_updated", "更新时间"), ("_updated_by", "更新人"),
                ("_source", "来源"))
COLUMNS: dict[RecordKind, tuple[tuple[str, str], ...]] = {
    RecordKind.PERSON: (("name", "姓名"), ("id_number", "公民身份号码"), ("sex", "性别"),
                        ("birth_date", "出生日期"), ("phone", "联系电话"),
                        ("population_type", "人口类型"), ("relation", "与户主关系"),
                        ("relation_code", "与户主关系代码"), ("address_full", "现住地址")),
    RecordKind.HOUSE: (("address_full", "房屋地址"), ("usage", "用途"), ("usage_code", "用途代码"),
                       ("occupancy", "居住类型"), ("owner_name", "房主姓名"),
                       ("owner_id", "房主公民身份号码"), ("owner_phone", "房主联系电话"),
                       ("tenants", "承租人编号")),
    RecordKind.UNIT: (("unit_name", "单位名称"), ("uscc", "统一社会信用代码"),
                      ("unit_type", "单位类型"), ("legal_rep", "法定代表人"),
                      ("legal_rep_phone", "联系电话"), ("staff_count", "从业人数"),
                      ("address_full", "单位地址")),
    RecordKind.ADDRESS: (("address_full", "标准地址"), ("street", "街路巷/小区"),
                         ("door", "门牌号"), ("building", "楼栋"), ("unit", "单元"),
                         ("floor", "层"), ("room", "户室")),
}


class ExportForbiddenError(Exception):
    """The requester may not export this node; str(error) is the Chinese reason."""


@dataclass(frozen=True, slots=True)
class ExportQuery:
    node: str
    kind: RecordKind
    state: ReviewState | None = None
    since: float | None = None
    until: float | None = None
    fmt: Format = "csv"
    masked: bool = False


class Sink(Protocol):
    def row(self, values: Sequence[str]) -> None: ...
    def rows(self, rows: Sequence[Sequence[str]]) -> None: ...
    def close(self) -> None: ...


class CsvSink:
    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self._file = path.open("w", encoding="utf-8-sig", newline="")  # BOM: Excel reads UTF-8
        self._writer = csv.writer(self._file)
        self._writer.writerow(header)

    def row(self, values: Sequence[str]) -> None:
        self._writer.writerow(values)

    def rows(self, rows: Sequence[Sequence[str]]) -> None:
        text = _plain_lines(rows)
        if text is None:
            self._writer.writerows(rows)
        else:
            self._file.write(text)

    def close(self) -> None:
        self._file.close()


def _plain_lines(rows: Sequence[Sequence[str]]) -> str | None:
    """The CSV text of `rows` built by joins (csv.writer costs twice as much), or None when
    a cell needs csv.writer: a quote, a line break, a comma or NUL in a cell, a value that
    is not a string. With none, csv.writer's output is exactly these joins."""
    if not rows or min(map(len, rows)) < 2:  # csv.writer quotes a lone empty cell
        return None
    try:
        text = "\n".join([",".join(row) for row in rows])
    except TypeError:
        return None
    cells = sum(len(row) for row in rows)
    if ('"' in text or "\r" in text or "\0" in text or text.count("\n") != len(rows) - 1
            or text.count(",") != cells - len(rows)):
        return None
    return text.replace("\n", "\r\n") + "\r\n"


class XlsxSink:
    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self._book = StreamingBook(path)
        self._header = list(header)
        self._sheets = 0
        self._left = 0  # rows the current sheet still takes

    def row(self, values: Sequence[str]) -> None:
        self.rows([values])

    def rows(self, rows: Sequence[Sequence[str]]) -> None:
        done = 0
        while done < len(rows):
            if self._left == 0:
                self._new_sheet()
            part = rows[done:done + self._left]
            self._book.rows(part)
            self._left -= len(part)
            done += len(part)

    def close(self) -> None:
        if self._sheets == 0:
            self._new_sheet()
        self._book.close()

    def _new_sheet(self) -> None:
        self._sheets += 1
        self._book.sheet(f"数据{self._sheets}")
        self._book.rows([self._header])
        self._left = XLSX_MAX_ROWS


def safe_cell(value: str) -> str:
    """Stop spreadsheet formula injection from collected free text (=cmd|' …)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def columns(kind: RecordKind) -> tuple[tuple[str, str], ...]:
    return (*_COMMON_HEAD, *COLUMNS[kind], *_COMMON_TAIL)


def row_of(record: Record, plain: dict[str, str], cols: Sequence[tuple[str, str]]) -> list[str]:
    """The reference mapping of a record to its row (row_maker is the fast one)."""
    meta = {"id": record.id, "_state": record.state.label, "_note": record.note,
            "_node": record.node, "_created": when(record.created_at),
            "_created_by": record.created_by, "_updated": when(record.updated_at),
            "_updated_by": record.updated_by, "_source": record.source}
    return [safe_cell(meta.get(name) or plain.get(name, "")) for name, _ in cols]


async def export(deps: CollectDeps, userid: str, query: ExportQuery, out: Path,
                 source: str = "cli") -> int:
    """Write the matching records to `out`; returns the row count. Audited either way."""
    detail = _describe(query)
    denied = await deps.access.may_reveal(userid, query.node)
    if denied:
        await deps.record_audit(userid, "collect.export", "refused", target=query.node,
                                detail=f"{detail}；{denied}", source=source)
        raise ExportForbiddenError(denied)
    try:
        rows = await _write(deps, query, out)
    except Exception as error:
        await deps.record_audit(userid, "collect.export", "error", target=query.node,
                                detail=f"{detail}；{type(error).__name__}", source=source)
        raise
    await deps.record_audit(userid, "collect.export", "ok", target=query.node,
                            detail=f"{detail}；{rows} 行；{out.name}", source=source)
    return rows


async def _write(deps: CollectDeps, query: ExportQuery, out: Path) -> int:
    cols = columns(query.kind)
    header = [label for _, label in cols]
    sink: Sink = XlsxSink(out, header) if query.fmt == "xlsx" else CsvSink(out, header)
    make = row_maker(deps.cipher, cols, query.masked)
    rows = 0
    try:
        async for batch in _ahead(deps.store.scan_rows(
                query.node, query.kind, state=query.state, since=query.since,
                until=query.until, batch=BATCH)):
            sink.rows([make(packed) for packed in batch])
            rows += len(batch)
    finally:
        sink.close()
    return rows


async def _ahead(batches: AsyncIterator[T]) -> AsyncIterator[T]:
    """`batches`, each next one read while the current one is written: Redis and the client's
    reply parsing overlap with the CPU-bound row building."""
    pending = asyncio.ensure_future(anext(batches))
    try:
        while True:
            try:
                current = await pending
            except StopAsyncIteration:
                return
            pending = asyncio.ensure_future(anext(batches))
            await asyncio.sleep(0)  # let it send its request before the writing holds the loop
            yield current
    finally:
        pending.cancel()  # a writer that failed leaves no read running


_STATES = {state.value: state.label for state in ReviewState}
_JOIN = "\ue000"  # leads each cell of a row for one search (a private-use character)
# a literal first: the scan skips ahead to each _JOIN (an alternation tests every position)
_UNSAFE = re.compile("\ue000[=+\\-@\t\r]")
Packed = list[Any]


def row_maker(cipher: FieldCipher, cols: Sequence[tuple[str, str]], masked: bool
              ) -> Callable[[Packed], list[str]]:
    """row_of for a packed row (Record.pack's array, decoded): the same cells, picked from one
    dict by an itemgetter instead of a call of safe_cell and a lookup per cell.

    A record's own fields never take the metadata's names (id and names led by _), so
    laying the metadata over the values is row_of's `meta or value`."""
    minutes: dict[int, str] = {}

    def minute(stamp: float) -> str:
        # when() formats to the minute (whole-minute zone offsets): one strftime per minute
        key = int(stamp // 60)
        if key not in minutes:
            if len(minutes) > 100_000:
                minutes.clear()
            minutes[key] = when(key * 60)
        return minutes[key]

    names = [name for name, _ in cols]
    pick, blank = itemgetter(*names), dict.fromkeys(names, "")
    values = _masked_values if masked else _opener(cipher)

    def make(p: Packed) -> list[str]:
        row = list(pick({
            **blank, **p[at.FIELDS], **values(p), "id": p[at.ID], "_state": _STATES[p[at.STATE]],
            "_note": p[at.NOTE], "_node": p[at.NODE], "_created": minute(p[at.CREATED_AT]),
            "_created_by": p[at.CREATED_BY], "_updated": minute(p[at.UPDATED_AT]),
            "_updated_by": p[at.UPDATED_BY], "_source": p[at.SOURCE]}))
        if _UNSAFE.search(_JOIN + _JOIN.join(row)):
            return [safe_cell(value) for value in row]
        return row

    return make


def _masked_values(packed: Packed) -> dict[str, str]:
    masked: dict[str, str] = packed[at.MASKED]
    return masked


def _opener(cipher: FieldCipher) -> Callable[[Packed], dict[str, str]]:
    def values(packed: Packed) -> dict[str, str]:
        try:
            return cipher.open_all(packed[at.SEALED], packed[at.ID])
        except FieldCryptoError:
            # a value sealed under a retired key: export what can be shown, flag the rest
            return dict.fromkeys(packed[at.SEALED], "（无法解密）")

    return values


def _values(deps: CollectDeps, record: Record, masked: bool) -> dict[str, str]:
    if masked:
        return {**record.fields, **record.masked}
    try:
        return reveal(record, deps.cipher)
    except FieldCryptoError:
        # a value sealed under a retired key: export what can be shown, flag the rest
        return {**record.fields, **dict.fromkeys(record.sealed, "（无法解密）")}


def _describe(query: ExportQuery) -> str:
    parts = [f"类型 {query.kind.label}", f"格式 {query.fmt}"]
    parts += [f"状态 {query.state.label}"] if query.state else []
    parts += [f"自 {when(query.since)}"] if query.since else []
    parts += [f"至 {when(query.until)}"] if query.until else []
    parts += ["脱敏"] if query.masked else []
    return "，".join(parts)
