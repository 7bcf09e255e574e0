"""Text normalisation shared by the validators and the address key: width, spaces, numerals."""

from __future__ import annotations

import re
import unicodedata

_DIGITS = {"零": 0, "〇": 0, "○": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
           "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}
CN_NUMBER = "[零〇○一二两三四五六七八九十百千]+"
_SPACES = re.compile(r"\s+")


def half_width(text: str) -> str:
    """Full-width letters, digits, punctuation and the ideographic space become ASCII."""
    return unicodedata.normalize("NFKC", text)


def squeeze(text: str) -> str:
    """Half-width, surrounding space removed and inner runs of white space collapsed."""
    return _SPACES.sub(" ", half_width(text)).strip()


def no_spaces(text: str) -> str:
    return _SPACES.sub("", half_width(text))


def chinese_to_int(text: str) -> int | None:
    """'十二' -> 12, '二百零五' -> 205, '三' -> 3; None when `text` is not a Chinese numeral."""
    if not text or any(ch not in _DIGITS and ch not in _UNITS for ch in text):
        return None
    if all(ch in _DIGITS for ch in text):  # digit by digit: '五零一' -> 501
        return int("".join(str(_DIGITS[ch]) for ch in text))
    total, current = 0, 0
    for ch in text:
        if ch in _DIGITS:
            current = _DIGITS[ch]
        else:
            total += (current or 1) * _UNITS[ch]
            current = 0
    return total + current


def numerals_before(text: str, markers: str) -> str:
    """Replace Chinese numerals directly followed by one of `markers` with Arabic digits.

    Only numbers that count something (三号楼, 二单元, 十二层) are converted; names such as
    五一路 keep their numerals because 路 is not a marker.
    """
    pattern = re.compile(f"({CN_NUMBER})(?=(?:{markers}))")

    def convert(match: re.Match[str]) -> str:
        value = chinese_to_int(match.group(1))
        return str(value) if value is not None else match.group(1)

    return pattern.sub(convert, text)
