"""Streaming export of records for the station (CSV or XLSX), constant memory at any size.

Records are read in index batches (ZRANGE by rank, then one MGET, or each primary's GETs at
once on a cluster) as packed strings; their rows are made a batch at a time by
collect/exportrows.py, in this process or in worker processes (collect/exportpool.py), and
written in order: CSV lines, or collect/xlsxstream.py's inline-string sheets with a new
sheet every 1,048,575 rows. `row_of` (from a Record) is the reference a row is checked
against in the tests. Only 民警 covering the node may export; the file carries full ID and
phone numbers (or masked ones with `masked=True`). Every export and every refusal is one
audit entry.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from collect.crypto import FieldCryptoError
from collect.deps import CollectDeps
from collect.exportpool import RowPool, worker_count
from collect.exportrows import Format, RenderSpec, csv_text, safe_cell
from collect.models import Record, RecordKind, ReviewState
from collect.records import reveal
from collect.replies import when
from collect.xlsxstream import StreamingBook, sheet_rows

T = TypeVar("T")
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


@dataclass(frozen=True, slots=True)
class Piece:
    """Rows [start, stop) of a batch, numbered from first_row; `opens_sheet` starts a sheet."""

    start: int
    stop: int
    first_row: int = 0
    opens_sheet: bool = False


class Sink(Protocol):
    def pieces(self, count: int) -> list[Piece]:
        """How the next `count` rows split (XLSX: at sheet ends); each is made and put whole."""
        ...

    def put(self, piece: Piece, text: str) -> None: ...
    def close(self) -> None: ...


class CsvSink:
    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self._file = path.open("w", encoding="utf-8-sig", newline="")  # BOM: Excel reads UTF-8
        self._file.write(csv_text([header]))

    def pieces(self, count: int) -> list[Piece]:
        return [Piece(0, count)]

    def put(self, piece: Piece, text: str) -> None:
        self._file.write(text)

    def rows(self, rows: Sequence[Sequence[str]]) -> None:
        self._file.write(csv_text(rows))

    def close(self) -> None:
        self._file.close()


class XlsxSink:
    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self._book = StreamingBook(path)
        self._header = list(header)
        self._sheets = 0
        self._planned = 0  # rows given out by pieces() in the last sheet planned
        self._started = False  # a sheet has been planned

    def pieces(self, count: int) -> list[Piece]:
        out, done = [], 0
        while done < count:
            opens = not self._started or self._planned == XLSX_MAX_ROWS
            if opens:
                self._started, self._planned = True, 0
            part = min(count - done, XLSX_MAX_ROWS - self._planned)
            out.append(Piece(done, done + part, self._planned + 2, opens))  # row 1: header
            self._planned += part
            done += part
        return out

    def put(self, piece: Piece, text: str) -> None:
        if piece.opens_sheet:
            self._new_sheet()
        assert self._book.next_row == piece.first_row, "pieces are put in the planned order"
        self._book.rendered(text, piece.stop - piece.start)

    def row(self, values: Sequence[str]) -> None:
        self.rows([values])

    def rows(self, rows: Sequence[Sequence[str]]) -> None:
        for piece in self.pieces(len(rows)):
            self.put(piece, sheet_rows(rows[piece.start:piece.stop], piece.first_row))

    def close(self) -> None:
        if self._sheets == 0:
            self._new_sheet()
        self._book.close()

    def _new_sheet(self) -> None:
        self._sheets += 1
        self._book.sheet(f"数据{self._sheets}")
        self._book.rows([self._header])


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
    spec = RenderSpec(deps.cipher, cols, query.masked, query.fmt)
    made: deque[tuple[Piece, asyncio.Future[str]]] = deque()
    rows = 0
    try:
        tuning = deps.settings.collect
        async with RowPool(spec, worker_count(tuning.export_workers),
                           tuning.export_inline_rows) as pool:
            async for packed in _ahead(deps.store.scan_packed(
                    query.node, query.kind, state=query.state, since=query.since,
                    until=query.until, batch=BATCH)):
                for piece in sink.pieces(len(packed)):
                    made.append((piece, pool.submit(packed[piece.start:piece.stop],
                                                    piece.first_row)))
                rows += len(packed)
                while len(made) > pool.depth:
                    piece, text = made.popleft()
                    sink.put(piece, await text)
            while made:
                piece, text = made.popleft()
                sink.put(piece, await text)
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
