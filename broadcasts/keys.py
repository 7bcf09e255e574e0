"""Every Redis key of broadcasts/, built in one place (arq's constants.py).

Cluster layout: all keys of one notice share the hash tag `{bc:<id>}`, so the pair/unit
scripts touch one slot; each job-queue shard (stream + due set) shares `{bcq:<n>}` for the
mover script; the rate limiter's buckets share `{rl}` so one script can take several
ceilings at once.
Keys touched by no multi-key script (ids, indexes, quota, API keys) carry no tag.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.keys import Keys


@dataclass(frozen=True, slots=True)
class BroadcastKeys:
    """Key builders under the service's prefix."""

    keys: Keys

    def _n(self, notice: int, part: str) -> str:
        return self.keys.k(f"{{bc:{notice}}}", part)

    # ids and indexes
    def seq(self) -> str:
        return self.keys.k("bc", "seq")

    def index(self) -> str:  # zset notice id -> created_at
        return self.keys.k("bc", "index")

    def by_issuer(self, userid: str) -> str:  # zset notice id -> created_at
        return self.keys.k("bc", "by", userid)

    def live(self, notice: int | str) -> str:  # pub/sub channel: a pair of the notice moved
        return self.keys.k("bc", "live", notice)

    # one notice
    def meta(self, notice: int) -> str:  # hash: Notice.to_hash()
        return self._n(notice, "meta")

    def groups(self, notice: int) -> str:  # hash chat -> PlannedGroup JSON
        return self._n(notice, "groups")

    def pairs(self, notice: int) -> str:  # hash chat -> PairRecord JSON
        return self._n(notice, "pair")

    def counts(self, notice: int) -> str:  # hash state -> number of pairs
        return self._n(notice, "count")

    def direct(self, notice: int) -> str:  # list: appchat then webhook chats, in send order
        return self._n(notice, "direct")

    def units(self, notice: int) -> str:  # hash unit -> owner task JSON
        return self._n(notice, "unit")

    def delivered(self, notice: int) -> str:  # zset chat -> delivered_at
        return self._n(notice, "done")

    def acks(self, notice: int) -> str:  # hash userid -> 已转达 time
        return self._n(notice, "ack")

    def marks(self, notice: int) -> str:  # hash: one-shot markers (reports, escalations)
        return self._n(notice, "mark")

    def outbox(self, notice: int) -> str:  # hash message id -> OutMessage JSON (outbox.py)
        return self._n(notice, "out")

    def reported(self, notice: int) -> str:  # hash chat -> what the deadline report said
        return self._n(notice, "reported")

    def corrected(self, notice: int) -> str:  # set of chats a correction was sent for
        return self._n(notice, "corrected")

    def followups(self, notice: int) -> str:  # list of follow-up notice ids
        return self._n(notice, "follow")

    def steps(self, notice: int) -> str:  # hash: machine-step completion times (bench/progress)
        return self._n(notice, "steps")

    # the shared job queue, in shards: shard i's stream and due set share one tag (the mover
    # script), the shards spread over the cluster; shard 0 keeps the unsharded names
    def _q(self, shard: int) -> str:
        return "{bcq}" if shard == 0 else f"{{bcq:{shard}}}"

    def stream(self, shard: int = 0) -> str:
        return self.keys.k(self._q(shard), "jobs")

    def due(self, shard: int = 0) -> str:  # zset job JSON -> due time (simulated ms)
        return self.keys.k(self._q(shard), "due")

    def stats(self) -> str:  # hash: fleet counters (jobs taken over, reconciliations …)
        return self.keys.k("bc", "stats")

    def worker_alive(self, worker: str) -> str:  # PX-TTL key while a worker lives
        return self.keys.k("bc", "worker", worker)

    # rate limiter buckets
    def bucket_log(self, bucket: str) -> str:  # zset "<seq>:<cost>" -> time (ms)
        return self.keys.k("{rl}", bucket, "log")

    def bucket_sum(self, bucket: str) -> str:  # cost inside the window
        return self.keys.k("{rl}", bucket, "sum")

    def limiter_seq(self) -> str:
        return self.keys.k("{rl}", "seq")

    # customer-group monthly quota (our own sends + what we learnt from WeCom)
    def quota_sent(self, month: str) -> str:  # hash chat -> our sends this month
        return self.keys.k("bc", "quota", month, "sent")

    def quota_known(self, month: str) -> str:  # hash chat -> sends we did not make
        return self.keys.k("bc", "quota", month, "known")

    def quota_full(self, month: str) -> str:  # set of chats WeCom reported as exhausted
        return self.keys.k("bc", "quota", month, "full")

    # owner confirmation history (planner forecast)
    def confirm_delays(self) -> str:  # list of recent owner confirmation delays (seconds)
        return self.keys.k("bc", "confirm-delays")

    def owner_record(self) -> str:  # hash "<owner>:asked" / "<owner>:in_time" -> count
        return self.keys.k("bc", "owner-record")

    def owner_record_notices(self) -> str:  # set of notices whose owners were counted
        return self.keys.k("bc", "owner-record-notices")

    # HTTP API keys
    def api_key(self, digest: str) -> str:  # hash: userid, label, created_at
        return self.keys.k("bc", "apikey", digest)

    def api_key_ids(self) -> str:  # hash key id -> digest
        return self.keys.k("bc", "apikey-ids")
