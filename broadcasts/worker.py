"""`gridbot worker`: processes broadcast jobs; any number of them share the work.

Each worker reads the shared stream through the consumer group, runs up to
`broadcast.worker_concurrency` jobs at once, moves due delayed jobs into the stream, keeps a
liveness key and its in-flight entries fresh, and takes over the entries of workers that
stopped doing so (XAUTOCLAIM after `broadcast.claim_idle_seconds`, never below
MIN_IDLE_REAL real seconds so that a sped-up clock does not turn a busy event loop into a
"dead" worker). The entries of a worker known to be dead — same host, its process gone, as
after `gridbot serve` was killed and restarted — are taken at once, so a restart does not
delay the jobs it interrupted (an escalation due at that moment goes out on time).
Nothing lives only in a worker's memory: killing one with SIGKILL loses no job, and the
pair records keep any group from being sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from bot.health import LoopHealth
from bot.ratelog import RateLimitedLog
from bot.wecom.errors import WeComError
from broadcasts.deps import Runtime
from broadcasts.engine import run_job
from broadcasts.jobs_common import Result, running
from broadcasts.queue import Entry

log = logging.getLogger("broadcasts.worker")

MIN_IDLE_REAL = 2.0  # real seconds
READ_BLOCK_MS = 50
STOP_GRACE_REAL = 30.0
HELPER_STOP_REAL = 5.0
ACK_EVERY_REAL = 0.05


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def dead_here(consumer: str) -> bool:
    """True when `consumer` (a worker_name()) ran on this host in a process that is gone."""
    parts = consumer.rsplit("-", 2)  # host-pid-token
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Worker:
    """One worker process's loop (also embeddable in `gridbot serve` or a test)."""

    def __init__(self, rt: Runtime, *, name: str = "", concurrency: int = 0,
                 health: LoopHealth | None = None) -> None:
        self.rt = rt
        self.name = name or worker_name()
        self.health = health or LoopHealth(f"worker {self.name}",
                                           rt.settings.redis.give_up_seconds)
        self.concurrency = concurrency or rt.config.worker_concurrency
        idle = max(rt.clock.real(rt.config.claim_idle_seconds), MIN_IDLE_REAL)
        self.idle_ms = int(idle * 1000)
        self.alive_ms = int(idle * 800)
        self.beat = idle / 5
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._acks: list[str] = []
        self._stop = asyncio.Event()
        self._closed = asyncio.Event()  # set once the in-flight jobs are drained
        self.processed = 0
        self._last_claim = 0.0
        self._quiet = RateLimitedLog(log)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Work until stop(); then let in-flight jobs finish (bounded).

        Redis going away is survived: each pass that fails backs off and tries again; after
        `redis.give_up_seconds` of failures LoopGaveUpError ends run() (exit non-zero)."""
        self.health.started()
        try:
            await self._run()
        except BaseException as error:
            self.health.gave_up()
            if not isinstance(error, asyncio.CancelledError):
                log.error("工作进程 %s 无法继续：%s", self.name, error)
            raise
        self.health.stopped()

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.rt.queue.ensure_group()
                break
            except RedisError as error:
                await self.health.backoff(error)
        await self._warm_up()
        helpers = [
            asyncio.create_task(self._every(self.beat, self._beat), name=f"beat-{self.name}"),
            asyncio.create_task(self._every(ACK_EVERY_REAL, self._ack_now),
                                name=f"acks-{self.name}")]
        try:
            await self._loop()
        finally:
            await self._drain()
            # The helpers end on _closed, not on cancel(): a cancellation that lands inside a
            # Redis call can surface as a Redis error, which their loops log and survive.
            self._closed.set()
            await asyncio.wait(helpers, timeout=HELPER_STOP_REAL)
            for task in helpers:
                task.cancel()
            with contextlib.suppress(RedisError):  # Redis may be what ended the loop
                await self._ack_now()
                await self.rt.redis.delete(self.rt.keys.worker_alive(self.name))

    async def _warm_up(self) -> None:
        """Hold an access token before claiming work: a fresh worker must not mark sends as
        in flight while it still waits for gettoken (a crash then would leave them uncertain)."""
        try:
            await self.rt.wecom.tokens.get()
        except WeComError as error:  # the send path retries and reports; do not block start-up
            log.warning("工作进程 %s 暂时取不到 access_token：%s", self.name, error)

    async def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                await self._pass()
                self.health.ok()
            except RedisError as error:
                log.warning("工作进程 %s 连不上 Redis（%s），稍后重试", self.name,
                            type(error).__name__)
                await self.health.backoff(error)

    async def _pass(self) -> None:
        """Move due jobs, read new ones, take over idle ones; start them."""
        q, loop = self.rt.queue, asyncio.get_running_loop()
        await q.move_due()
        free = self.concurrency - len(self._inflight)
        if free <= 0:
            await asyncio.wait(list(self._inflight.values()), timeout=0.1,
                               return_when=asyncio.FIRST_COMPLETED)
            return
        entries = await q.read(self.name, free, READ_BLOCK_MS)
        if loop.time() - self._last_claim > self.beat * 2:
            self._last_claim = loop.time()
            taken = await self._take_from_dead() + await q.take_over(
                self.name, self.idle_ms, free)
            if taken:
                log.warning("took over %d idle jobs", len(taken))
                await self.rt.redis.hincrby(self.rt.keys.stats(), "taken_over", len(taken))
            entries += taken
        for entry in entries:
            if entry.id not in self._inflight:
                self._inflight[entry.id] = asyncio.create_task(
                    self._process(entry), name=f"job {entry.job.to_json()}")

    async def _take_from_dead(self) -> list[Entry]:
        """Every entry of local workers whose process has exited (no need to wait out the
        idle time: a dead pid on this host cannot still be working on them)."""
        taken: list[Entry] = []
        for consumer in await self.rt.queue.consumers():
            if consumer != self.name and dead_here(consumer):
                taken += await self.rt.queue.claim_all(self.name, consumer)
        return taken

    async def _process(self, entry: Entry) -> None:
        running(self.rt, self.name, entry.job, +1)
        try:
            result = await run_job(self.rt, entry.job, self.name)
        except Exception:
            log.exception("job %s failed; retrying in 30 s", entry.job)
            with contextlib.suppress(Exception):
                await self.rt.queue.defer([entry.job], self.rt.clock.now() + 30)
                await self.rt.queue.ack([entry.id])
        else:
            if result is Result.DONE:
                self._acks.append(entry.id)  # acknowledged in batches; a redelivery is harmless
            self.processed += 1
        finally:
            running(self.rt, self.name, entry.job, -1)
            self._inflight.pop(entry.id, None)

    async def _every(self, seconds: float, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` every `seconds` (real) until the worker has drained; errors are logged."""
        while not self._closed.is_set():
            try:
                await step()
            except Exception as error:  # Redis away: once a minute, not every beat
                name = getattr(step, "__name__", str(step))
                self._quiet.log(logging.WARNING, f"{name}:{type(error).__name__}",
                                "%s failed: %s", name, type(error).__name__,
                                exc_info=not isinstance(error, RedisError))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), seconds)

    async def _ack_now(self) -> None:
        ids, self._acks = self._acks, []
        try:
            await self.rt.queue.ack(ids)
        except RedisError:
            self._acks[:0] = ids  # acknowledged once Redis is back, not re-run
            raise

    async def _beat(self) -> None:
        """Liveness key and the in-flight entries' idle times, kept fresh."""
        await self.rt.redis.set(self.rt.keys.worker_alive(self.name), "1", px=self.alive_ms)
        await self.rt.queue.touch(self.name, list(self._inflight))

    async def _drain(self) -> None:
        """Let in-flight jobs finish, then cancel the stragglers: their stream entries stay
        pending, so another worker takes them over."""
        tasks = list(self._inflight.values())
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=STOP_GRACE_REAL)
        if not late:
            return
        log.warning("工作进程 %s 停止：%d 个任务 %.0f 秒内未完成，已取消"
                    "（将由其他进程接手）：%s", self.name, len(late), STOP_GRACE_REAL,
                    ", ".join(sorted(t.get_name() for t in late)))
        for task in late:
            task.cancel()
        await asyncio.wait(late, timeout=HELPER_STOP_REAL)  # bounded: see run()
