"""Every Redis key of deliberation/. All keys of one matter share the {dm:<id>} tag (the cast
script touches matter, roll, ballots and entries in one slot); a draw's keys share {dd:<id>}.
Indexes per village and the due set are small (written on open/close only)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.keys import Keys


@dataclass(frozen=True, slots=True)
class DelibKeys:
    keys: Keys

    def seq(self, kind: str) -> str:
        return self.keys.k("delib", "seq", kind)

    def _m(self, matter: str, part: str) -> str:
        return self.keys.k("delib", "{dm:" + matter + "}", part)

    def matter(self, matter: str) -> str:
        return self._m(matter, "matter")

    def roll(self, matter: str) -> str:
        """vid -> voter json (masked label, grid)."""
        return self._m(matter, "roll")

    def ballots(self, matter: str) -> str:
        """keyed slot -> the voter's current entry (names no voter)."""
        return self._m(matter, "ballots")

    def entries(self, matter: str) -> str:
        """Append-only list of canonical entries (the chained record)."""
        return self._m(matter, "entries")

    def finalising(self, matter: str) -> str:
        """SET NX marker: one process counts and announces a closed matter."""
        return self._m(matter, "finalising")

    def hashes(self, matter: str) -> str:
        """Chain hashes, written when the matter closes."""
        return self._m(matter, "hashes")

    def who(self, matter: str) -> str:
        """keyed digest of a household / person record id -> vid (a resident asking in
        微信客服 gets their own link); never read by anything the organiser sees."""
        return self._m(matter, "who")

    def kf_seen(self, msgid: str) -> str:
        return self.keys.k("delib", "kfseen", msgid)

    def kf_tries(self, resident: str) -> str:
        return self.keys.k("delib", "kftries", resident)

    def village(self, village: str) -> str:
        return self.keys.k("delib", "village", village)

    def organisers(self, village: str) -> str:
        return self.keys.k("delib", "organisers", village)

    def due(self) -> str:
        """Due transitions: member '<open|close>:<matter>', score = simulated epoch."""
        return self.keys.k("delib", "due")

    def draw(self, draw: str) -> str:
        return self.keys.k("delib", "{dd:" + draw + "}", "draw")

    def draws(self, village: str) -> str:
        return self.keys.k("delib", "draws", village)
