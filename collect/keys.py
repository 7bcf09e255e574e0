"""Every Redis key of the 一标三实 store, built from bot.keys.Keys.k in one place.

A record's hash and its history list share the {record id} hash tag: they are written in one
MULTI/EXEC. Indexes (per node, per review state) are derived data, written after the record and
re-checked against it when read, so they may live in any slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.keys import Keys


@dataclass(frozen=True, slots=True)
class CollectKeys:
    """Key builders for collect/, under the deployment's prefix."""

    keys: Keys

    def seq(self, kind: str) -> str:
        return self.keys.k("collect", "seq", kind)

    def record(self, record_id: str) -> str:
        return self.keys.k("collect", "{" + record_id + "}", "rec")

    def records(self, record_ids: Sequence[str]) -> list[str]:
        """record() of each id, the prefix joined once (an export builds millions)."""
        head = self.keys.k("collect", "")
        return [f"{head}{{{record_id}}}:rec" for record_id in record_ids]

    def history(self, record_id: str) -> str:
        return self.keys.k("collect", "{" + record_id + "}", "hist")

    def record_pattern(self) -> str:
        """SCAN pattern matching every record hash (key rotation walks these)."""
        return self.keys.k("collect", "{*}", "rec")

    # dedupe: keyed blind index / canonical keys -> record id
    def blind(self, name: str, digest: str) -> str:
        return self.keys.k("collect", "bidx", name, digest)

    def address(self, digest: str) -> str:
        return self.keys.k("collect", "addr", digest)

    def address_parts(self, digest: str) -> str:
        """Address ids with the same elements under any node (finds the grid of an address
        given to someone covering a whole township)."""
        return self.keys.k("collect", "addr-parts", digest)

    def house_at(self, address_id: str) -> str:
        return self.keys.k("collect", "house-at", address_id)

    def uscc(self, code: str) -> str:
        return self.keys.k("collect", "uscc", code)

    # indexes: every ancestor node of a record's node lists it in the ZSET of its review
    # state (a subtree query is one ZSET per state); without a state: the index of all
    # states that the earlier layout kept (`gridbot collect upgrade-records` deletes them)
    def under(self, node: str, kind: str, state: str = "") -> str:
        parts: list[object] = ["collect", "idx", node, kind]
        if state:
            parts.append(state)
        return self.keys.k(*parts)

    # campaigns
    def campaign_seq(self) -> str:
        return self.keys.k("collect", "campaign", "seq")

    def campaign(self, campaign_id: str) -> str:
        return self.keys.k("collect", "campaign", campaign_id)

    def campaigns_active(self) -> str:
        return self.keys.k("collect", "campaigns", "active")

    def campaign_covered(self, campaign_id: str, grid: str) -> str:
        """Household addresses of `grid` with at least one person collected in the campaign."""
        return self.keys.k("collect", "campaign", campaign_id, "covered", grid)

    def campaign_reminded(self, campaign_id: str, grid: str) -> str:
        return self.keys.k("collect", "campaign", campaign_id, "reminded", grid)

    # self-declaration form: a submitted form nonce, so a resubmission is not stored twice
    def form_nonce(self, nonce: str) -> str:
        return self.keys.k("collect", "form-used", nonce)

    def form_draft(self, draft_id: str) -> str:
        """Numbers a resident typed into a form that was sent back for fixing (sealed)."""
        return self.keys.k("collect", "form-draft", draft_id)

    def form_rate(self, token_digest: str) -> str:
        return self.keys.k("collect", "form-rate", token_digest)

    def index_pattern(self) -> str:
        """SCAN pattern matching every per-node index."""
        return self.keys.k("collect", "idx", "*")

    def rotate_cursor(self) -> str:
        return self.keys.k("collect", "rotate", "cursor")
