"""The node code scheme (docs/design.md): which code shapes belong to which level.

市/县区 are GB/T 2260 (6 digits), 乡镇街道 9 digits and 村社区 12 digits (NBS 统计用区划代码),
网格 `<village>-G<nn>`, 楼栋 `<grid>-B<nnn>`. A city code ends in "00", a county's does not.
"""

from __future__ import annotations

import re

from registry.models import Level

_PATTERNS: tuple[tuple[Level, re.Pattern[str]], ...] = (
    (Level.CITY, re.compile(r"\d{4}00")),
    (Level.COUNTY, re.compile(r"\d{6}")),
    (Level.TOWNSHIP, re.compile(r"\d{9}")),
    (Level.VILLAGE, re.compile(r"\d{12}")),
    (Level.GRID, re.compile(r"\d{12}-G\d{2,3}")),
    (Level.BUILDING, re.compile(r"\d{12}-G\d{2,3}-B\d{3,4}")),
)


def level_of(code: str) -> Level | None:
    """The level a well-formed code belongs to, or None for a malformed code."""
    for level, pattern in _PATTERNS:
        if pattern.fullmatch(code):
            return level
    return None


def is_well_formed(code: str) -> bool:
    return level_of(code) is not None


def expected_parent(code: str) -> str | None:
    """The parent the scheme implies (None for a city or a malformed code)."""
    level = level_of(code)
    if level is Level.COUNTY:
        return code[:4] + "00"
    if level is Level.TOWNSHIP:
        return code[:6]
    if level is Level.VILLAGE:
        return code[:9]
    if level in (Level.GRID, Level.BUILDING):
        return code.rsplit("-", 1)[0]
    return None


def grid_code(village: str, number: int) -> str:
    return f"{village}-G{number:02d}"


def building_code(grid: str, number: int) -> str:
    return f"{grid}-B{number:03d}"
