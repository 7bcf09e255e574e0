"""Reading CSV and XLSX tables as (line number, {column: text}) rows.

CSV files come from Excel as often as from scripts: UTF-8 with or without BOM, UTF-16 with
BOM ("Unicode 文本", tab separated), or GBK/GB18030 (Excel's "CSV" on a Chinese Windows).
The encoding is detected, never assumed; the delimiter is whichever of , \\t ; the header uses
most. Header names are matched case-insensitively against each column's aliases (English or
Chinese). Line numbers are the file's own, header = line 1, so errors point at the right row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DELIMITERS = (",", "\t", ";")


class TableError(Exception):
    """The file cannot be read as a table at all (Chinese message)."""


@dataclass(frozen=True, slots=True)
class Table:
    columns: tuple[str, ...]  # canonical names of the recognised columns
    unknown: tuple[str, ...]  # header cells no alias matched
    rows: list[tuple[int, dict[str, str]]]
    encoding: str


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding name) of a CSV file's bytes."""
    try:
        if data.startswith(b"\xef\xbb\xbf"):
            return data[3:].decode("utf-8"), "UTF-8 (BOM)"
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16"), "UTF-16"
    except UnicodeDecodeError:
        raise TableError("文件带有 UTF-8/UTF-16 标记，但内容不是该编码，请重新另存") from None
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "GBK/GB18030"
    except UnicodeDecodeError:
        raise TableError("无法识别文件编码：请另存为 UTF-8 或 GBK 编码的 CSV") from None


def read_table(path: Path, aliases: Mapping[str, Sequence[str]]) -> Table:
    """Read a .csv or .xlsx file; `aliases` maps canonical column names to header spellings."""
    if not path.is_file():
        raise TableError(f"找不到文件 {path}")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _table(_xlsx_rows(path), aliases, "XLSX")
    text, encoding = decode(path.read_bytes())
    return _table(_csv_rows(text), aliases, encoding)


def read_csv_text(text: str, aliases: Mapping[str, Sequence[str]]) -> Table:
    return _table(_csv_rows(text), aliases, "text")


def _csv_rows(text: str) -> list[tuple[int, list[str]]]:
    first = text.split("\n", 1)[0]
    delimiter = max(DELIMITERS, key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows, line = [], 1
    for record in reader:
        rows.append((line, record))
        line = reader.line_num + 1
    return rows


def _xlsx_rows(path: Path) -> list[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds for a broken file
        raise TableError(f"无法读取 Excel 文件 {path.name}：{error}") from None
    try:
        sheet = book.worksheets[0]
        return [
            (number, [_cell(v) for v in values])
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1)
        ]
    finally:
        book.close()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores 120 as 120.0
    return str(value)


def _table(
    raw: Iterable[tuple[int, list[str]]], aliases: Mapping[str, Sequence[str]], encoding: str
) -> Table:
    rows = [(line, cells) for line, cells in raw if any(c.strip() for c in cells)]
    if not rows:
        raise TableError("文件是空的：第一行应为表头")
    _, header = rows[0]
    lookup = {a.strip().lower(): name for name, names in aliases.items() for a in (name, *names)}
    names = [lookup.get(h.strip().lstrip("\ufeff").lower(), "") for h in header]
    unknown = tuple(h for h, n in zip(header, names, strict=True) if not n and h.strip())
    body = [
        (line, {n: (cells[i].strip() if i < len(cells) else "") for i, n in enumerate(names) if n})
        for line, cells in rows[1:]
    ]
    return Table(tuple(n for n in names if n), unknown, body, encoding)
