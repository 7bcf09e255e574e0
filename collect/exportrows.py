"""The CPU half of an export: packed records to the file's text, CSV lines or XLSX rows.

Pure functions of their input, so that they run alike in the exporting process and in its
worker processes (collect/exportpool.py). `row_maker` is collect/export.py's `row_of` for a
packed row, checked against it in the tests.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal

from collect import models as at
from collect.crypto import FieldCipher, FieldCryptoError
from collect.models import ReviewState, decode_all
from collect.replies import when
from collect.xlsxstream import sheet_rows

Format = Literal["csv", "xlsx"]
Packed = list[Any]
_STATES = {state.value: state.label for state in ReviewState}
_JOIN = "\ue000"  # leads each cell of a row for one search (a private-use character)
# a literal first: the scan skips ahead to each _JOIN (an alternation tests every position)
_UNSAFE = re.compile("\ue000[=+\\-@\t\r]")


@dataclass(frozen=True, slots=True)
class RenderSpec:
    """What turns a batch of packed records into text; picklable, for the worker processes."""

    cipher: FieldCipher
    cols: tuple[tuple[str, str], ...]
    masked: bool
    fmt: Format


class Renderer:
    """Packed records -> the text the sink writes (rows numbered from `first_row` in XLSX)."""

    def __init__(self, spec: RenderSpec) -> None:
        self._make = row_maker(spec.cipher, spec.cols, spec.masked)
        self._fmt = spec.fmt

    def __call__(self, packed: list[str], first_row: int) -> str:
        rows = [self._make(row) for row in decode_all(packed)]
        return csv_text(rows) if self._fmt == "csv" else sheet_rows(rows, first_row)


def safe_cell(value: str) -> str:
    """Stop spreadsheet formula injection from collected free text (=cmd|' …)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


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


def csv_text(rows: Sequence[Sequence[str]]) -> str:
    """The CSV lines of `rows`, exactly as csv.writer writes them."""
    text = _plain_lines(rows)
    if text is not None:
        return text
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


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
