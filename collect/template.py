"""The key-value template workers send: `采集 人口` then `姓名：…` `身份证：…` lines.

Full- and half-width colons, extra spaces and blank lines are tolerated, and several pairs may
share a line (`姓名：张三 电话：138…`). Unknown keys are reported, never silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from collect.models import RecordKind
from collect.schema import SCHEMAS, field_for
from collect.text import half_width

_COLON = r"\s*[:：]\s*"
_UNKNOWN_KEY = re.compile(r"^\s*([^\s:：]{1,12})\s*[:：]")


@dataclass(frozen=True, slots=True)
class Parsed:
    values: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


def _key_pattern(kind: RecordKind, extra: tuple[str, ...]) -> re.Pattern[str]:
    words = {w for s in SCHEMAS[kind] for w in (s.label, *s.aliases)} | set(extra)
    alternation = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?:(?<=\s)|^)({alternation}){_COLON}")


def parse_pairs(kind: RecordKind, text: str, extra: tuple[str, ...] = ()) -> Parsed:
    """`{field name: value}` from the lines of `text`; `extra` keys are kept under their word."""
    pattern = _key_pattern(kind, extra)
    values: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(half_width(text).splitlines(), start=1):
        if not line.strip():
            continue
        matches = list(pattern.finditer(line))
        if not matches or line[: matches[0].start()].strip():
            problems.append(_unknown(line, number))
            continue
        for match, nxt in zip(matches, [*matches[1:], None], strict=True):
            end = nxt.start() if nxt else len(line)
            word, value = match.group(1), line[match.end():end].strip()
            spec = field_for(kind, word)
            name = spec.name if spec else word
            if name in values and values[name] != value:
                problems.append(f"第{number}行：“{word}”重复填写，请只保留一个")
            values[name] = value
    return Parsed(values, tuple(problems))


def _unknown(line: str, number: int) -> str:
    key = _UNKNOWN_KEY.match(line)
    if key:
        return f"第{number}行：无法识别的项目“{key.group(1)}”，请对照模板填写（发送 帮助 查看）"
    return f"第{number}行：缺少冒号，请写成 项目：内容，如 姓名：张三"


def split_kind(args: str) -> tuple[RecordKind | None, str]:
    """`人口\\n姓名：…` -> (PERSON, '姓名：…'); the kind word may be followed by a line break."""
    head, _, rest = args.partition("\n")
    words = head.split(maxsplit=1)
    kind = RecordKind.from_label(words[0]) if words else None
    if kind is None:
        return None, args
    inline = words[1] if len(words) > 1 else ""
    return kind, "\n".join(p for p in (inline, rest) if p.strip())
