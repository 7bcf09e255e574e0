"""redis-py types replies as bytes | str even on decode_responses clients; these narrow them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.redis import as_str


def text(value: bytes | str | None) -> str:
    return as_str(value) or ""


def text_map(raw: Mapping[Any, Any] | None) -> dict[str, str]:
    return {text(k): text(v) for k, v in (raw or {}).items()}


def hmapping(values: Mapping[str, str]) -> Mapping[Any, Any]:
    """hset's mapping parameter is invariant in its key type; a str-keyed dict is fine."""
    return values
