"""Every Redis key of cases/, built in one place.

A case's record and timeline share the hash tag `{case:<n>}` (one MULTI writes both). The
clocks are sharded sorted sets `{casedue:<s>}` (due and in-flight of one shard share the tag,
so the claim script stays in one slot). Indexes are per node (the case's node and each
ancestor below the city), per officer, per reporter: none grows with the whole city in one key.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.keys import Keys


@dataclass(frozen=True, slots=True)
class CaseKeys:
    keys: Keys

    def seq(self) -> str:
        return self.keys.k("cases", "seq")

    def case(self, number: int) -> str:  # string: Case JSON
        return self.keys.k("cases", f"{{case:{number}}}", "rec")

    def timeline(self, number: int) -> str:  # list of Entry JSON
        return self.keys.k("cases", f"{{case:{number}}}", "tl")

    def marks(self, number: int) -> str:  # hash: once-only markers of one case
        return self.keys.k("cases", f"{{case:{number}}}", "marks")

    # indexes (derived: written after the record, checked against it when read)
    def under(self, node: str) -> str:  # zset case number -> created_at
        return self.keys.k("cases", "idx", node)

    def open_under(self, node: str) -> str:  # zset case number -> respond due (open cases)
        return self.keys.k("cases", "open", node)

    def mine(self, userid: str) -> str:  # zset case number -> created_at (routed to userid)
        return self.keys.k("cases", "mine", userid)

    def by_notice(self, notice: int) -> str:  # zset clue case number -> created_at
        return self.keys.k("cases", "clues", notice)

    # conversation state
    def last_report(self, who: str) -> str:  # string: case number photos/location attach to
        return self.keys.k("cases", "last", who)

    def survey(self, who: str) -> str:  # string: case number waiting for the reporter's rating
        return self.keys.k("cases", "survey", who)

    def resident(self, digest: str) -> str:  # hash: node, open_kfid, pending question
        return self.keys.k("cases", "resident", digest)

    def kf_seen(self, msgid: str) -> str:  # SET NX: one case change per 微信客服 message
        return self.keys.k("cases", "kfseen", msgid)

    def kf_sent(self, msgid: str) -> str:  # our send_msg id -> case number (msg_send_fail)
        return self.keys.k("cases", "kfsent", msgid)

    # clocks
    def due(self, shard: int) -> str:
        return self.keys.k("cases", f"{{casedue:{shard}}}", "due")

    def inflight(self, shard: int) -> str:
        return self.keys.k("cases", f"{{casedue:{shard}}}", "run")
