"""Small pure filters for routes. Anything needing I/O (roles) happens inside handlers."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.events import ExternalChatChange, TextMessage

_SEP = re.compile(r"[\s:：]+")


@dataclass(frozen=True, slots=True)
class Command:
    """Matches text that starts with one of `names` followed by white space, a colon or nothing."""

    names: tuple[str, ...]

    def __init__(self, *names: str) -> None:
        object.__setattr__(self, "names", tuple(sorted(names, key=len, reverse=True)))

    def __call__(self, event: TextMessage) -> bool:
        return self.match(event.text) is not None

    def match(self, text: str) -> str | None:
        """The matched command name, or None."""
        lowered = text.lower()
        for name in self.names:
            if lowered.startswith(name.lower()):
                rest = text[len(name):]
                if not rest or _SEP.match(rest) or rest[0] in "\n":
                    return name
        return None

    def args(self, event: TextMessage) -> str:
        """Everything after the command name, stripped."""
        name = self.match(event.text) or ""
        return event.text[len(name):].lstrip(" \t:：\u3000").strip()


def text_equals(*words: str) -> Callable[[TextMessage], bool]:
    """Matches text equal to one of `words` (case-insensitive, trimmed)."""
    wanted = {w.lower() for w in words}
    return lambda event: event.text.lower() in wanted


def chat_change(*change_types: str) -> Callable[[ExternalChatChange], bool]:
    """Matches change_external_chat events of the given ChangeType(s)."""
    return lambda event: event.change_type in change_types
