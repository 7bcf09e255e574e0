"""Replies of a decode_responses Redis client as the str types they are at run time
(redis-py annotates every reply as bytes | str); shared by every domain package."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def text(value: Any) -> str:
    """A reply as str ("" for None)."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def opt(value: Any) -> str | None:
    """A reply as str, keeping None."""
    return None if value is None else text(value)


def smap(value: Any) -> dict[str, str]:
    """A hash reply as dict[str, str]."""
    raw: Mapping[Any, Any] = value or {}
    return {text(k): text(v) for k, v in raw.items()}


def slist(value: Iterable[Any] | None) -> list[str]:
    return [text(v) for v in value or ()]


def olist(value: Iterable[Any] | None) -> list[str | None]:
    return [opt(v) for v in value or ()]


def hmapping(values: Mapping[str, str]) -> Mapping[Any, Any]:
    """hset's mapping parameter is invariant in its key type; a str-keyed dict is fine."""
    return values
