"""A minimal streaming XLSX writer: text cells only, one sheet after another, constant memory.

Export files are text tables (ID numbers must stay text), so the writer needs no styles,
numbers or shared strings: each row is one string of inline-string cells, compressed into
the zip as it comes. openpyxl's write-only mode does the same work through one Python object
per cell, a fifth of the speed at a million rows.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape, quoteattr

_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_HEAD = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
         f'<worksheet xmlns="{_NS}"><sheetData>')
_TAIL = "</sheetData></worksheet>"
# A row needing care has XML specials, characters XML 1.0 forbids, or a cell with edge
# whitespace: found in the row's cells joined (and ended) by _JOIN, a private-use character,
# by a few scans that each skip ahead (one pattern of alternatives tests every position).
_JOIN = "\ue000"
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_LEADING = re.compile("\ue000\\s")
_TRAILING = re.compile("\\s\ue000")


def _careful(values: Sequence[str]) -> bool:
    joined = _JOIN + _JOIN.join(values) + _JOIN
    return ("&" in joined or "<" in joined or ">" in joined
            or bool(_ILLEGAL.search(joined) or _LEADING.search(joined)
                    or _TRAILING.search(joined)))


def column_letters(count: int) -> list[str]:
    out = []
    for n in range(1, count + 1):
        name = ""
        while n:
            n, rest = divmod(n - 1, 26)
            name = chr(65 + rest) + name
        out.append(name)
    return out


def _cell(ref: str, value: str) -> str:
    value = escape(_ILLEGAL.sub("", value))
    space = ' xml:space="preserve"' if value != value.strip() else ""
    return f'<c r="{ref}" t="inlineStr"><is><t{space}>{value}</t></is></c>'


def sheet_rows(rows: Sequence[Sequence[str]], first: int) -> str:
    """The <row> elements of `rows`, numbered from `first`: pure, so that an export's worker
    processes make them and the book only writes them."""
    letters = column_letters(max(map(len, rows), default=0))
    out = []
    for n, values in enumerate(rows, first):
        if _careful(values):
            cells = "".join(_cell(f"{letters[i]}{n}", v) for i, v in enumerate(values) if v)
        else:
            cells = "".join(f'<c r="{letters[i]}{n}" t="inlineStr"><is><t>{v}</t></is></c>'
                            for i, v in enumerate(values) if v)
        out.append(f'<row r="{n}">{cells}</row>')
    return "".join(out)


class StreamingBook:
    """Sheets written one at a time (`sheet`, then `rows` …); `close` writes the workbook."""

    def __init__(self, path: Path) -> None:
        self._zip = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
        self._names: list[str] = []
        self._part: IO[bytes] | None = None
        self._row = 0

    def sheet(self, name: str) -> None:
        self._end_sheet()
        self._names.append(name)
        self._part = self._zip.open(f"xl/worksheets/sheet{len(self._names)}.xml", "w",
                                    force_zip64=True)
        self._part.write(_HEAD.encode())
        self._row = 0

    @property
    def next_row(self) -> int:
        """The number the current sheet's next row takes."""
        return self._row + 1

    def rows(self, rows: Sequence[Sequence[str]]) -> None:
        self.rendered(sheet_rows(rows, self.next_row), len(rows))

    def rendered(self, xml: str, count: int) -> None:
        """`count` rows already made by sheet_rows, numbered from next_row."""
        assert self._part is not None, "sheet() first"
        self._part.write(xml.encode())
        self._row += count

    def close(self) -> None:
        self._end_sheet()
        sheets = "".join(f"<sheet name={quoteattr(name)} sheetId=\"{i}\" r:id=\"rId{i}\"/>"
                         for i, name in enumerate(self._names, 1))
        numbers = range(1, len(self._names) + 1)
        rels = "".join(f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" '
                       f'Target="worksheets/sheet{i}.xml"/>' for i in numbers)
        styles_id = len(self._names) + 1
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' for i in numbers)
        xml = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        files = {
            "[Content_Types].xml": (
                f'{xml}<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                'content-types"><Default Extension="rels" ContentType="application/'
                'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
                'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
                'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
                'sheet.main+xml"/><Override PartName="/xl/styles.xml" ContentType="'
                'application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
                f'{overrides}</Types>'),
            "_rels/.rels": (
                f'{xml}<Relationships xmlns="{_PKG}"><Relationship Id="rId1" '
                f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
            "xl/workbook.xml": (
                f'{xml}<workbook xmlns="{_NS}" xmlns:r="{_REL}"><sheets>{sheets}</sheets>'
                '</workbook>'),
            "xl/_rels/workbook.xml.rels": (
                f'{xml}<Relationships xmlns="{_PKG}">{rels}<Relationship '
                f'Id="rId{styles_id}" Type="{_REL}/styles" Target="styles.xml"/>'
                '</Relationships>'),
            "xl/styles.xml": (
                f'{xml}<styleSheet xmlns="{_NS}"><fonts count="1"><font><sz val="11"/>'
                '<name val="Calibri"/></font></fonts><fills count="1"><fill><patternFill '
                'patternType="none"/></fill></fills><borders count="1"><border><left/>'
                '<right/><top/><bottom/><diagonal/></border></borders><cellStyleXfs '
                'count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
                '</cellStyleXfs><cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" '
                'borderId="0" xfId="0"/></cellXfs><cellStyles count="1"><cellStyle '
                'name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'),
        }
        for name, body in files.items():
            self._zip.writestr(name, body)
        self._zip.close()

    def _end_sheet(self) -> None:
        if self._part is not None:
            self._part.write(_TAIL.encode())
            self._part.close()
            self._part = None
