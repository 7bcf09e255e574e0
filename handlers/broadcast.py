"""Placeholder: filled in by its owner."""

from bot.router import Router

router = Router(name=__name__)
