"""Reading WeCom request bodies: required fields, bounded integers, content, cursors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.wecom.simulator import errors
from bot.wecom.simulator.errors import SimError

Body = Mapping[str, Any]


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def string(body: Body, key: str, missing: int = errors.INVALID_PARAMETER) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise SimError(missing, f"{key} missing or invalid")
    return value


def integer(body: Body, key: str, default: int, low: int, high: int) -> int:
    value = body.get(key, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise SimError(errors.INVALID_PARAMETER, f"invalid {key}, must be {low}-{high}")
    return value


def content(body: Body, allowed: tuple[str, ...]) -> tuple[str, str]:
    """(msgtype, content) of a text/markdown message body."""
    msgtype = body.get("msgtype")
    if msgtype not in allowed:
        raise SimError(errors.INVALID_MSGTYPE)
    part = body.get(msgtype)
    text = part.get("content") if isinstance(part, Mapping) else None
    if not isinstance(text, str) or not text:
        raise SimError(errors.EMPTY_CONTENT)
    return msgtype, text


def truncate_utf8(text: str, limit: int) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def cursor(body: Body) -> int:
    """Our cursors are opaque to callers but are offsets inside."""
    raw = body.get("cursor") or ""
    if not raw:
        return 0
    if not isinstance(raw, str) or not raw.startswith("c") or not raw[1:].isdigit():
        raise SimError(errors.INVALID_PARAMETER, "invalid cursor")
    return int(raw[1:])


def next_cursor(offset: int, more: bool) -> str:
    return f"c{offset}" if more else ""
