"""Typed views of redis-py replies: the clients are decode_responses=True, so replies are str.

redis-py annotates replies as `bytes | str`; these helpers narrow them in one place instead
of a cast at every call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bot.redis import as_str


def opt(value: Any) -> str | None:
    """A reply that may be nil."""
    return as_str(value)


def text(value: Any) -> str:
    """A reply that may be nil, as "" then."""
    return as_str(value) or ""


def texts(values: Iterable[Any]) -> list[str]:
    return [text(v) for v in values]


def optionals(values: Iterable[Any]) -> list[str | None]:
    return [as_str(v) for v in values]


def mapping(value: Mapping[Any, Any] | None) -> dict[str, str]:
    return {text(k): text(v) for k, v in (value or {}).items()}
