"""The Chinese command grammar of notices, forgiving about punctuation and order.

    通知 <级别> 范围：<目标>[，<目标>…] [除：<目标>…] [标签：<群标签>…] [定时：<时间>]
         [图片：<网址>] [链接：<网址> [标题]] 内容：<正文（可多行）>

- 级别: 紧急预警 (紧急/预警), 协查通报 (协查), 普通通知 (普通); may also be the command
  word itself: `紧急预警 范围：孝义市 内容：…`.
- 目标 (范围): tree nodes by name (孝义市), path (孝义市/新义街道) or code (141181);
  lists are split by ，,、;； or spaces. 除 takes the same (or a group's exact name).
  标签 selects groups carrying a tag (inside 范围, or everything the officer covers when
  范围 is missing). Words before the first key that are not a level are taken as targets
  too: `通知 紧急 孝义市 内容：…`.
- 内容 (or 正文) ends the header: everything after it is the text. `MD：` instead sends markdown.
  Without a 内容 key, the lines after the first are the text.
- 时间: `2026-11-27 08:00`, `11-27 8:00`, `明天 08:00`, `08:00` (next occurrence), Beijing time;
  `定时 <时间> 通知 …` in front works as well.

Follow-ups: `更新 17 <内容>`, `撤回 17 [原因]`, `已破案 17 [内容]`; `#17` and full-width colons
are accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from broadcasts.models import Content, NoticeKind, NoticeLevel
from broadcasts.quota import BEIJING

USAGE = ("通知 紧急预警 范围：孝义市,汾阳市 除：某某村 内容：……"
         "（级别：紧急预警/协查通报/普通通知；"
         "可加 标签：… 定时：2026-11-27 08:00 图片：网址 链接：网址）")

LEVEL_WORDS: dict[str, NoticeLevel] = {
    "紧急预警": NoticeLevel.URGENT, "紧急": NoticeLevel.URGENT, "预警": NoticeLevel.URGENT,
    "协查通报": NoticeLevel.ASSIST, "协查": NoticeLevel.ASSIST, "通报": NoticeLevel.ASSIST,
    "普通通知": NoticeLevel.NORMAL, "普通": NoticeLevel.NORMAL,
}
FOLLOW_WORDS: dict[str, NoticeKind] = {
    "更新": NoticeKind.UPDATE, "撤回": NoticeKind.RETRACT, "已破案": NoticeKind.SOLVED,
    "破案": NoticeKind.SOLVED,
}
_FIELDS = {
    "范围": "targets", "目标": "targets", "发往": "targets", "区域": "targets",
    "除": "exclude", "排除": "exclude", "不含": "exclude", "除去": "exclude",
    "标签": "tags", "群标签": "tags", "定时": "schedule", "发送时间": "schedule",
    "图片": "image", "配图": "image", "链接": "link", "级别": "level",
}
_BODY = re.compile(r"(内容|正文|文本|MD|markdown|Markdown)\s*[:：]\s*", re.S)
_FIELD = re.compile(
    r"(?:^|(?<=[\s,，;；]))(" + "|".join(sorted(_FIELDS, key=len, reverse=True)) + r")\s*[:：]\s*"
    r"|(?:^|(?<=[\s,，;；]))(除)\s+"
)
_LIST_SEP = re.compile(r"[\s,，、;；]+")
_ID = re.compile(r"^\s*[#＃]?\s*(\d{1,9})\s*[:：,，]?\s*", re.S)
_TIME = re.compile(
    r"^\s*(?:(今天|明天|后天)|(?:(\d{4})[-/.年])?(\d{1,2})[-/.月](\d{1,2})日?)?\s*"
    r"(\d{1,2})[:：点](\d{2})?分?"
)


class GrammarError(ValueError):
    """A command that could not be understood; str() is a Chinese hint for the sender."""


@dataclass(frozen=True, slots=True)
class NoticeDraft:
    """A parsed 通知 command, before target names are resolved against the registry."""

    level: NoticeLevel
    content: Content
    targets: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    schedule_at: float | None = None


@dataclass(frozen=True, slots=True)
class FollowUpDraft:
    """A parsed 更新 / 撤回 / 已破案 command."""

    kind: NoticeKind
    notice_id: int
    text: str = ""


@dataclass(slots=True)
class _Fields:
    values: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, value: str) -> None:
        self.values.setdefault(name, []).append(value.strip())

    def one(self, name: str) -> str:
        return " ".join(self.values.get(name, [])).strip()

    def items(self, name: str) -> tuple[str, ...]:
        out: list[str] = []
        for value in self.values.get(name, []):
            out += [v for v in _LIST_SEP.split(value) if v]
        return tuple(dict.fromkeys(out))


def parse_notice(text: str, now: float, *, level_word: str = "") -> NoticeDraft:
    """Parse the arguments of a 通知 command (everything after the command word)."""
    schedule_prefix, text = _schedule_prefix(_strip_command(text), now)
    header, body, markdown = _split_body(text)
    fields = _header_fields(header)
    level = _level(level_word, fields)
    if not body.strip():
        raise GrammarError(f"缺少通知内容。格式：{USAGE}")
    link_url, link_title = _link(fields.one("link"))
    schedule = fields.one("schedule")
    schedule_at = parse_time(schedule, now) if schedule else schedule_prefix
    return NoticeDraft(
        level=level,
        content=Content(text=body.strip(), markdown=markdown, image_url=fields.one("image"),
                        link_url=link_url, link_title=link_title),
        targets=fields.items("targets") + tuple(
            w for w in fields.items("lead") if w not in LEVEL_WORDS),
        exclude=fields.items("exclude"),
        tags=fields.items("tags"), schedule_at=schedule_at,
    )


def parse_follow_up(word: str, text: str) -> FollowUpDraft:
    """Parse `17 内容…` after 更新 / 撤回 / 已破案."""
    kind = FOLLOW_WORDS[word]
    match = _ID.match(text)
    if not match:
        example = "原因" if kind is NoticeKind.RETRACT else "内容"
        raise GrammarError(f"请写明通知编号，例如：{word} 17 {example}")
    rest = text[match.end():].strip()
    body = _BODY.match(rest)
    return FollowUpDraft(kind, int(match.group(1)), rest[body.end():].strip() if body else rest)


def parse_notice_id(text: str, command: str) -> int:
    """The notice number after 确认 / 批准 / 进度 / 已转达 / 取消."""
    match = _ID.match(text)
    if not match:
        raise GrammarError(f"请写明通知编号，例如：{command} 17")
    return int(match.group(1))


def parse_time(value: str, now: float) -> float:
    """Beijing wall-clock `value` as simulated epoch seconds; the result must be in the future."""
    match = _TIME.match(value)
    if not match or value[match.end():].strip():
        raise GrammarError(f"无法识别时间「{value}」，请写成 2026-11-27 08:00 或 明天 08:00")
    day_word, year, month, day, hour, minute = match.groups()
    base = datetime.fromtimestamp(now, tz=BEIJING)
    try:
        when = base.replace(hour=int(hour), minute=int(minute or 0), second=0, microsecond=0)
        if day_word:
            when += timedelta(days=("今天", "明天", "后天").index(day_word))
        elif month:
            when = when.replace(year=int(year) if year else base.year, month=int(month),
                                day=int(day))
        elif when.timestamp() <= now:
            when += timedelta(days=1)
    except ValueError as error:
        raise GrammarError(f"时间「{value}」无效") from error
    if when.timestamp() <= now:
        raise GrammarError(f"定时时间「{value}」已经过去")
    return when.timestamp()


def _schedule_prefix(text: str, now: float) -> tuple[float | None, str]:
    """`定时 2026-11-27 08:00 通知 …` → (time, `…`)."""
    match = re.match(r"^(?:定时|发送时间)\s*[:：]?\s*", text)
    if not match:
        return None, text
    rest = text[match.end():]
    when = _TIME.match(rest)
    if not when:
        raise GrammarError("定时后请写时间，例如："
                           "定时 2026-11-27 08:00 通知 紧急预警 范围：… 内容：…")
    at = parse_time(rest[:when.end()], now)
    return at, _strip_command(rest[when.end():])


def _strip_command(text: str) -> str:
    """Drop a leading 通知 / 发布通知 (the handler passes the arguments, the CLI may not)."""
    text = text.strip()
    command = re.match(r"^(通知|发布通知|发通知)(?=[\s:：]|$)\s*[:：]?\s*", text)
    return text[command.end():] if command else text


def _split_body(text: str) -> tuple[str, str, bool]:
    match = _BODY.search(text)
    if match:
        markdown = match.group(1).lower() in {"md", "markdown"}
        return text[:match.start()], text[match.end():], markdown
    header, _, body = text.partition("\n")
    return header, body, False


def _header_fields(header: str) -> _Fields:
    fields = _Fields()
    matches = list(_FIELD.finditer(header))
    fields.add("lead", header[:matches[0].start()] if matches else header)
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(header)
        fields.add(_FIELDS[match.group(1) or match.group(2)], header[match.end():end])
    return fields


def _level(level_word: str, fields: _Fields) -> NoticeLevel:
    for word in (level_word, *fields.items("level"), *fields.items("lead")):
        if word in LEVEL_WORDS:
            return LEVEL_WORDS[word]
    raise GrammarError(f"请写明级别：紧急预警、协查通报或普通通知。格式：{USAGE}")


def _link(value: str) -> tuple[str, str]:
    if not value:
        return "", ""
    url, _, title = value.partition(" ")
    if not url.startswith(("http://", "https://")):
        raise GrammarError(f"链接必须以 http:// 或 https:// 开头：{url}")
    return url, title.strip()
