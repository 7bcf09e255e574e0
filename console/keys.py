"""Every Redis key of the console. A session's keys share the tag `{cs:<digest>}`; a pending
login's state its own `{cl:<state>}` (one key each, so no script spans two tags)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.keys import Keys


@dataclass(frozen=True, slots=True)
class ConsoleKeys:
    keys: Keys

    def session(self, digest: str) -> str:  # hash: userid, csrf, created, seen
        return self.keys.k("console", f"{{cs:{digest}}}", "s")

    def login_state(self, state: str) -> str:  # string: the page to return to; TTL 5 min
        return self.keys.k("console", f"{{cl:{state}}}")

    def link(self, digest: str) -> str:  # string: userid of a one-time sign-in link (demo)
        return self.keys.k("console", f"{{cln:{digest}}}")
