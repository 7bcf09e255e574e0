"""Masking of ID numbers and phone numbers wherever text is shown or logged.

Conventions (yibiao_sanshi.md §4): ID numbers keep the region (first 4) and the last 4 and
always hide the birth date; mobiles keep the first 3 and last 4; names keep the first character.
`scrub` finds such numbers inside free text, so logs, errors and replies never carry them.
"""

from __future__ import annotations

import re

# 18-digit IDs (last may be X), 15-digit old IDs, mainland mobiles with optional +86/0086.
_ID18 = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[0-9Xx])(?![0-9A-Za-z])")
_ID15 = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{6})(\d{3})(?![0-9A-Za-z])")
_MOBILE = re.compile(
    r"(?<![0-9])(?:\+?86[- ]?|0086[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?![0-9])"
)


def mask_id_number(value: str) -> str:
    """`141102199503010018` -> `1411**********0018`."""
    v = value.strip()
    if len(v) <= 8:
        return "*" * len(v)
    return v[:4] + "*" * (len(v) - 8) + v[-4:]


def mask_phone(value: str) -> str:
    """`13812345678` -> `138****5678`."""
    digits = re.sub(r"\D", "", value)
    if len(digits) > 11 and digits.startswith("86"):
        digits = digits[-11:]
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_name(value: str) -> str:
    """`张三丰` -> `张**`."""
    v = value.strip()
    return v[:1] + "*" * (len(v) - 1) if v else ""


# A hash or token of 32+ hex characters: a 64-hex SHA-256 holds a run like "13312345678"
# about one time in fifty, and masking it would break the draw's published hashes that
# anyone must be able to recompute. No ID or mobile number is that long.
_HEX_TOKEN = re.compile(r"(?<![0-9A-Za-z])([0-9A-Fa-f]{32,})(?![0-9A-Za-z])")


def scrub(text: str) -> str:
    """Mask every ID number and mobile number found in `text` (hex hashes left whole)."""
    parts = _HEX_TOKEN.split(text)  # odd indexes: the hex tokens
    return "".join(part if i % 2 else _scrub_plain(part) for i, part in enumerate(parts))


def _scrub_plain(text: str) -> str:
    text = _ID18.sub(lambda m: mask_id_number(m.group(0)), text)
    text = _ID15.sub(lambda m: mask_id_number(m.group(0)), text)
    return _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
