"""A small aiogram-style router: decorator-registered async handlers guarded by pure filters.

Handlers are plain `async def handler(event, ctx)`; modules in handlers/ each own one Router
and are composed in order (first match wins) by handlers.ROUTERS.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

from bot.events import Event, ExternalChatChange, TextMessage
from bot.help import HelpEntry

if TYPE_CHECKING:
    from bot.context import Context

EventT = TypeVar("EventT", bound=Event)
Filter: TypeAlias = Callable[[EventT], bool]
Handler: TypeAlias = Callable[[EventT, "Context"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Route(Generic[EventT]):
    event_type: type[EventT]
    filters: tuple[Filter[EventT], ...]
    handler: Handler[EventT]

    def matches(self, event: Event) -> bool:
        return isinstance(event, self.event_type) and all(f(event) for f in self.filters)


class SkipHandler(Exception):
    """Raised by a handler that matched but declines the event: dispatch tries the next route."""


class Router:
    """Ordered routes of one handlers module; the first matching route wins."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.routes: list[Route[Any]] = []
        self.help: list[HelpEntry] = []

    def on(
        self, event_type: type[EventT], *filters: Filter[EventT]
    ) -> Callable[[Handler[EventT]], Handler[EventT]]:
        """Register `handler` for `event_type` when every filter passes."""

        def register(handler: Handler[EventT]) -> Handler[EventT]:
            self.routes.append(Route(event_type, filters, handler))
            return handler

        return register

    def message(
        self, *filters: Filter[TextMessage]
    ) -> Callable[[Handler[TextMessage]], Handler[TextMessage]]:
        """Register a handler for text messages."""
        return self.on(TextMessage, *filters)

    def chat_change(
        self, *filters: Filter[ExternalChatChange]
    ) -> Callable[[Handler[ExternalChatChange]], Handler[ExternalChatChange]]:
        """Register a handler for resident-group change events."""
        return self.on(ExternalChatChange, *filters)

    def describe(self, usage: str, *roles: str) -> None:
        """Add a 帮助 line for this module's command."""
        self.help.append(HelpEntry(usage, frozenset(roles)))


def matching_routes(routers: Sequence[Router], event: Event) -> list[Route[Any]]:
    """Every route that matches `event`, in dispatch order."""
    return [route for router in routers for route in router.routes if route.matches(event)]


async def dispatch(routers: Sequence[Router], event: Event, ctx: Context) -> bool:
    """Run the first matching handler that does not skip; False when none handled it."""
    for route in matching_routes(routers, event):
        try:
            await route.handler(event, ctx)
        except SkipHandler:
            continue
        return True
    return False
