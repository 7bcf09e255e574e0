"""Every Redis key the service core uses, built in one place (arq's constants.py).

Keys that a single Lua script or MULTI touches together share a {hash tag}, so the layout
also works on Redis Cluster.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    """Key builders under one configurable prefix."""

    prefix: str = "gridbot"

    def k(self, *parts: object) -> str:
        """Join `parts` under the prefix: k("a", 1) -> "gridbot:a:1"."""
        return ":".join((self.prefix, *(str(p) for p in parts)))

    # callback intake, in shards: one shard's stream, dedupe keys, handled log and markers
    # share its tag ({in} for shard 0, {in:<n>} for the others) for the intake and finish
    # scripts; the shards spread over a cluster's primaries (bot/inbox.py)
    @staticmethod
    def _in(shard: int) -> str:
        return "{in}" if shard == 0 else f"{{in:{shard}}}"

    def inbox(self, shard: int = 0) -> str:
        return self.k(self._in(shard), "stream")

    def dedupe(self, key: str, shard: int = 0) -> str:
        return self.k(self._in(shard), "seen", key)

    def handled(self, shard: int = 0) -> str:
        return self.k(self._in(shard), "handled")

    def handled_marker(self, key: str, shard: int = 0) -> str:
        return self.k(self._in(shard), "done", key)

    # WeCom API
    def access_token(self, corp_id: str, agent_id: int) -> str:
        return self.k("wecom", "token", corp_id, agent_id)

    def access_token_lock(self, corp_id: str, agent_id: int) -> str:
        return self.k("wecom", "token-lock", corp_id, agent_id)

    def api_block(self, api: str) -> str:
        return self.k("wecom", "blocked", api)

    # 微信客服 intake (bot.kf): one account's pull state shares its tag; each message its own
    def kf_account(self, open_kfid: str, part: str) -> str:
        return self.k(f"{{kf:{open_kfid}}}", part)  # part: cursor | lease | again

    def kf_message(self, msgid: str, part: str) -> str:
        return self.k(f"{{kfm:{msgid}}}", part)  # part: claim | done

    # audit
    def audit(self) -> str:
        return self.k("audit")

    # conversation state of one user (guided flows, pending confirmations)
    def session(self, userid: str, name: str) -> str:
        return self.k("session", name, userid)

    # the job store's MULTI touches jobs and runs together: one {sched} tag
    def scheduler_jobs(self) -> str:
        return self.k("{sched}", "jobs")

    def scheduler_runs(self) -> str:
        return self.k("{sched}", "runs")

    def scheduler_legacy(self) -> tuple[str, str]:
        """The (jobs, runs) keys before they shared a tag; moved once on start (one Redis)."""
        return self.k("sched", "jobs"), self.k("sched", "runs")

    def scheduler_fired(self, job_id: str, run_at: float) -> str:
        return self.k("sched", "fired", job_id, f"{run_at:.3f}")
