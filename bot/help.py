"""帮助 lines: what each router registers and what the context hands to the 帮助 handler.

Its own module so that bot.router (which needs the handler's Context type) and bot.context
(which carries the routers' help) both depend on it and not on each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class HelpEntry:
    """One line of 帮助: shown to senders whose role is in `roles` (empty: everyone)."""

    usage: str
    roles: frozenset[str] = frozenset()


class HelpSource(Protocol):
    """Anything that lists 帮助 lines (a Router)."""

    @property
    def help(self) -> Sequence[HelpEntry]: ...
