"""Checks on a notice's fields before anything is stored (issue 10).

`check_draft` runs in BroadcastService before a notice gets its id, for chat, CLI and HTTP
alike: a time to send at must be a finite moment in the future and no further ahead than
`broadcast.max_schedule_ahead_days`; links and pictures must be http(s). `fields_of` checks
the HTTP API's JSON body field by field (types, sizes, unknown fields). Each failure raises
GrammarError with a Chinese message that names the field and the fix; the caller audits it.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from bot.settings import BroadcastSettings
from broadcasts.grammar import GrammarError, NoticeDraft

MAX_TEXT = 4096  # characters; WeCom splits nothing longer into a single message anyway
MAX_URL = 2048
MAX_TITLE = 128
MAX_ITEMS = 200  # targets / exclude / tags entries
MAX_ITEM = 128  # characters per entry
WHEN = "定时时间 schedule_at"
API_FIELDS = {"level", "targets", "exclude", "tags", "text", "markdown", "image_url",
              "link_url", "link_title", "schedule_at"}


def check_draft(draft: NoticeDraft, now: float, config: BroadcastSettings) -> None:
    """Refuse a draft whose time or links are unusable (GrammarError naming the field)."""
    if draft.schedule_at is not None:
        check_time(draft.schedule_at, now, config)
    for name, url in (("image_url", draft.content.image_url),
                      ("link_url", draft.content.link_url)):
        if url:
            check_url(name, url)


def check_time(at: float, now: float, config: BroadcastSettings) -> None:
    if not math.isfinite(at):
        raise GrammarError(f"{WHEN} 不是有效时间：请给出未来的时间（秒级时间戳或 "
                           "2026-11-27 08:00）")
    if at <= now:
        raise GrammarError(f"{WHEN} 已经过去：定时发送的时间必须晚于现在")
    ahead = config.max_schedule_ahead_days
    if at - now > ahead * 86400:
        raise GrammarError(f"{WHEN} 太远：最多可提前 {ahead} 天定时")


def check_url(name: str, url: str) -> None:
    parts = urlsplit(url)
    if len(url) > MAX_URL or parts.scheme not in ("http", "https") or not parts.netloc:
        raise GrammarError(f"{name} 必须是 http:// 或 https:// 开头的网址"
                           f"（不超过 {MAX_URL} 字符）")


def fields_of(body: dict[str, Any]) -> dict[str, Any]:
    """The structured request's fields, type-checked; GrammarError on the first bad one."""
    unknown = sorted(set(body) - API_FIELDS)
    if unknown:
        allowed = "、".join(sorted(API_FIELDS))
        raise GrammarError(f"不认识的字段 {unknown[0]}：可用字段为 {allowed}")
    out: dict[str, Any] = {}
    for name in ("level", "text", "image_url", "link_url", "link_title"):
        value = body.get(name, "")
        if not isinstance(value, str):
            raise GrammarError(f"{name} 必须是字符串")
        limit = {"text": MAX_TEXT, "link_title": MAX_TITLE}.get(name, MAX_URL)
        if len(value) > limit:
            raise GrammarError(f"{name} 过长：最多 {limit} 个字符")
        out[name] = value
    markdown = body.get("markdown", False)
    if not isinstance(markdown, bool):
        raise GrammarError("markdown 必须是 true 或 false")
    out["markdown"] = markdown
    for name in ("targets", "exclude", "tags"):
        out[name] = _strings(name, body.get(name, []))
    out["schedule_at"] = _when(body.get("schedule_at"))
    return out


def _strings(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise GrammarError(f"{name} 必须是字符串数组，例如 [\"孝义市/新义街道\"]")
    if len(value) > MAX_ITEMS or any(len(v) > MAX_ITEM or not v.strip() for v in value):
        raise GrammarError(f"{name} 至多 {MAX_ITEMS} 项，每项 1–{MAX_ITEM} 个字符")
    return tuple(v.strip() for v in value)


def _when(value: Any) -> float | str | None:
    """None, a number (seconds since the epoch) or a Beijing time text (parsed later)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise GrammarError("schedule_at 必须是秒级时间戳或 \"2026-11-27 08:00\" 形式的时间")
    if isinstance(value, str):
        if len(value) > 64:
            raise GrammarError("schedule_at 过长")
        return value
    try:
        return float(value)
    except OverflowError:  # an integer too large for a float: no moment in time
        raise GrammarError(f"{WHEN} 不是有效时间") from None
