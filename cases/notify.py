"""Telling people about cases: 1:1 app messages to members (a failed send is logged, never
raised into the officer's command: the case has already changed)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from bot.masking import scrub
from bot.wecom.errors import WeComError
from cases.deps import CasesDeps

log = logging.getLogger(__name__)


async def tell(deps: CasesDeps, userids: Iterable[str], text: str) -> bool:
    """Send `text` to members; False when nobody could be told."""
    targets = sorted({u for u in userids if u})
    if not targets or deps.wecom is None:
        return False
    try:
        await deps.wecom.send_text(targets, scrub(text))
    except WeComError as error:
        log.warning("! cases: message to %d member(s) failed: %s", len(targets), error)
        return False
    return True


async def names(deps: CasesDeps, userids: Iterable[str]) -> dict[str, str]:
    people = await deps.registry.people({u for u in userids if u})
    return {p.userid: f"{p.name}（{p.role.label}）" for p in people}
