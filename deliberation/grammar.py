"""The chat grammar of 说事议事 (handlers/deliberation.py): `字段：值` lines after the command.

    议题 村：东关社区            抓阄 村：东关社区
    标题：修建村口道路            标题：宅基地分配
    说明：……                      物品：1-28号地块        (或 A地块、B地块 …)
    选项：同意、不同意、弃权      名单：本村住户          (或 张三户、李四户 …)
    表决：每户 | 每人             方式：两段 | 一段
    会议：村民会议 | 村民代表会议 公开值来源：12月10日深证成指收盘
    通过：过半数 | 三分之二       承诺：<sha256>、<sha256>   (委员会各自原值的哈希)
    方式：网上 | 举手             附加值：各户自愿提供的数字、…  (并入名单哈希与种子)
    开始：12月1日 9:00            (省略：立即)
    截止：3天 | 12小时 | 12月10日 18:00 | 2026-12-10 18:00
    改票：允许
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import TypeVar

from deliberation.draws import DrawDraft
from deliberation.models import DEFAULT_OPTIONS, Body, Electorate, Mode, Rule
from deliberation.service import MatterDraft

T = TypeVar("T")
_BEIJING = dt.timezone(dt.timedelta(hours=8))
_LINE = re.compile(r"^\s*([^：:\s]{1,6})\s*[：:]\s*(.*?)\s*$")
_SPLIT = re.compile(r"[、,，;；\s]+")
_RELATIVE = re.compile(r"^(\d{1,4})\s*(天|小时|分钟)$")
_ABSOLUTE = re.compile(
    r"^(?:(\d{4})[-/年])?(\d{1,2})[-/月](\d{1,2})日?(?:\s*(\d{1,2})[:：点](\d{2})?)?$")
_RANGE = re.compile(r"^(\d{1,4})\s*[-~～至到]\s*(\d{1,4})\s*(.*)$")
_UNITS = {"天": 86400, "小时": 3600, "分钟": 60}


class GrammarError(Exception):
    """str() tells the user which field is wrong and how to write it."""


def fields(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def parse_time(value: str, now: float, *, base: float | None = None) -> float:
    value = value.strip()
    relative = _RELATIVE.match(value)
    if relative:
        return (base or now) + int(relative.group(1)) * _UNITS[relative.group(2)]
    absolute = _ABSOLUTE.match(value)
    if not absolute:
        raise GrammarError(f"时间「{value}」看不懂：请写 3天 / 12小时 / 12月10日 18:00")
    today = dt.datetime.fromtimestamp(now, _BEIJING)
    year, month, day, hour, minute = absolute.groups()
    try:
        at = dt.datetime(int(year or today.year), int(month), int(day), int(hour or 18),
                         int(minute or 0), tzinfo=_BEIJING)
    except ValueError:
        raise GrammarError(f"时间「{value}」不是有效日期") from None
    if at.timestamp() < now and not year:
        at = at.replace(year=at.year + 1)
    return at.timestamp()


def _choice(raw: dict[str, str], name: str, parse: Callable[[str], T | None],
            default: T, hint: str) -> T:
    if name not in raw:
        return default
    value = parse(raw[name])
    if value is None:
        raise GrammarError(f"{name}：请写 {hint}")
    return value


def _rule(text: str) -> Rule | None:
    return {"过半数": Rule.MAJORITY, "半数": Rule.MAJORITY, "三分之二": Rule.TWO_THIRDS,
            "2/3": Rule.TWO_THIRDS}.get(text.strip())


def _mode(text: str) -> Mode | None:
    return {"网上": Mode.ONLINE, "链接": Mode.ONLINE, "举手": Mode.HANDS,
            "举手表决": Mode.HANDS}.get(text.strip())


def parse_matter(text: str, now: float) -> MatterDraft:
    raw = fields(text)
    if not raw.get("村") or not raw.get("标题"):
        raise GrammarError("发起议题请写：议题（换行）村：村名（换行）标题：…，"
                           "可加 说明/选项/表决/会议/通过/方式/截止")
    options = tuple(o for o in _SPLIT.split(raw.get("选项", "")) if o) or DEFAULT_OPTIONS
    opens = parse_time(raw["开始"], now) if raw.get("开始") else now
    closes = parse_time(raw["截止"], now, base=opens) if raw.get("截止") else opens + 3 * 86400
    return MatterDraft(
        village=raw["村"], title=raw["标题"], background=raw.get("说明", ""), options=options,
        electorate=_choice(raw, "表决", Electorate.parse, Electorate.HOUSEHOLDS,
                           "每户 或 每人"),
        body=_choice(raw, "会议", Body.parse, Body.VILLAGERS, "村民会议 或 村民代表会议"),
        rule=_choice(raw, "通过", _rule, Rule.MAJORITY, "过半数 或 三分之二"),
        mode=_choice(raw, "方式", _mode, Mode.ONLINE, "网上 或 举手"),
        opens_at=opens, closes_at=closes, allow_change=raw.get("改票", "") in ("允许", "可以"))


def items(text: str) -> tuple[str, ...]:
    """`1-28号地块` → 1号地块 … 28号地块; otherwise a list split on 、 or commas."""
    ranged = _RANGE.match(text.strip())
    if ranged:
        first, last, suffix = int(ranged.group(1)), int(ranged.group(2)), ranged.group(3)
        if not 1 <= last - first + 1 <= 2000:
            raise GrammarError("物品：范围应为 1-28号地块 这样的写法，最多2000项")
        return tuple(f"{n}{suffix}" for n in range(first, last + 1))
    return tuple(x for x in _SPLIT.split(text) if x)


def parse_draw(text: str) -> DrawDraft:
    raw = fields(text)
    if not raw.get("村") or not raw.get("标题") or not raw.get("物品"):
        raise GrammarError("发起抓阄请写：抓阄（换行）村：村名（换行）标题：…（换行）"
                           "物品：1-28号地块，可加 名单/方式/公开值来源/承诺")
    people = raw.get("名单", "本村住户")
    participants = () if people in ("本村住户", "本村", "全体住户") else \
        tuple(x for x in _SPLIT.split(people) if x)
    return DrawDraft(
        village=raw["村"], title=raw["标题"], items=items(raw["物品"]),
        participants=participants, two_stage=raw.get("方式", "两段") != "一段",
        public_source=raw.get("公开值来源", ""),
        commitments=tuple(c.lower() for c in _SPLIT.split(raw.get("承诺", "")) if c),
        contributions=tuple(c for c in _SPLIT.split(raw.get("附加值", "")) if c))


_HANDS = re.compile(r"^(\S+)\s+到会\s*(\d{1,6})\s*(.*)$", re.S)
_COUNT = re.compile(r"(\S+?)\s*(\d{1,6})")


def parse_hands(text: str, options: tuple[str, ...] | None = None
                ) -> tuple[str, int, dict[str, int]]:
    """`YT3 到会 45 同意 40 不同意 3 弃权 2` → (matter, present, {option: count})."""
    match = _HANDS.match(text.strip())
    if not match:
        raise GrammarError("举手表决请写：举手表决 YT3 到会 45 同意 40 不同意 3 弃权 2")
    counts = {name: int(n) for name, n in _COUNT.findall(match.group(3))}
    return match.group(1), int(match.group(2)), counts
