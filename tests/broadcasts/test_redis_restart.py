"""The redis-server is SIGKILLed and started again on its AOF (appendfsync everysec) while a
notice is being sent by two `gridbot worker`s and the worker embedded in `gridbot serve`:
right after 确认, mid-sending, and near the deadline. Every notice settles with no group lost
and none delivered twice, the final report's headings add up to the groups targeted, and
/healthz answers non-200 while Redis is down and 200 again once it is back."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.redis import EmbeddedRedis, free_port
from bot.wecom.simulator import OwnerProfile
from broadcasts.content import has_marker
from broadcasts.models import PairState
from tests.bot.support import ROOT, gridbot_command, gridbot_env
from tests.broadcasts.conftest import COUNTY_OFFICER, Env
from tests.broadcasts.test_engine import issue

MakeEnv = Callable[..., Awaitable[Env]]


def serve_env(env: Env, port: int, **extra: str) -> dict[str, str]:
    """The subprocess environment plus what `gridbot serve` needs (its field keys)."""
    security = env.settings.security
    return {**env.subprocess_env(), "GRIDBOT_SERVER__PORT": str(port),
            "GRIDBOT_SECURITY__FIELD_KEYS": security.field_keys.get_secret_value(),
            "GRIDBOT_SECURITY__BLIND_INDEX_KEY": security.blind_index_key.get_secret_value(),
            **extra}
DOWN_REAL = 1.5  # seconds the server stays dead
HEADER = re.compile(r"【结束报告】通知 #\d+（[^）]*）共 (\d+) 个群：(.*?)。")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A redis-server of this test alone: the test kills it."""
    server = EmbeddedRedis(tmp_path / "redis", appendfsync="everysec")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(own_redis: EmbeddedRedis) -> str:  # overrides the session server for this module
    return own_redis.url


class Process:
    """A `gridbot …` subprocess logging to a file (a pipe could fill up and block it)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._file = log.open("ab")
        self.proc = subprocess.Popen(gridbot_command(*args), cwd=ROOT, env=gridbot_env(env),
                                     stdout=self._file, stderr=self._file)

    def stop(self) -> None:
        print(f"--- {self.log.name} ---\n" + self.log.read_text(errors="replace")[-3000:])
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._file.close()


async def health(http: aiohttp.ClientSession, url: str) -> int:
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=3)) as response:
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


async def kill_and_restart(server: EmbeddedRedis, http: aiohttp.ClientSession,
                           healthz: str) -> set[int]:
    """SIGKILL the server, watch /healthz while it is down, start it on the same AOF."""
    assert server.process is not None
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    seen: set[int] = set()
    until = time.monotonic() + DOWN_REAL
    while time.monotonic() < until:
        seen.add(await health(http, healthz))
        await asyncio.sleep(0.1)
    server.start()  # same port, same data directory, same AOF
    return seen


async def wait_healthy(http: aiohttp.ClientSession, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await health(http, url) == 200:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} not healthy within {timeout} s")


@pytest.mark.timeout(240)
@pytest.mark.parametrize("moment", ["after_confirm", "mid_sending", "near_deadline"])
async def test_redis_restart_loses_nothing(make_env: MakeEnv, own_redis: EmbeddedRedis,
                                           tmp_path: Path, moment: str) -> None:
    delays = (500.0, 700.0) if moment == "near_deadline" else (60.0, 120.0)
    env = await make_env(speed=20, profile=OwnerProfile.always(delays))
    nid = await issue(env, "通知 紧急预警 范围：交口县 内容：今晚有大风，请关好门窗")
    port = free_port()
    environ = serve_env(env, port, GRIDBOT_LOG__LEVEL="INFO")
    healthz = f"http://127.0.0.1:{port}/healthz"
    procs = [Process(["serve"], environ, tmp_path / "serve.log"),
             Process(["worker", "--name", "w1"], environ, tmp_path / "w1.log"),
             Process(["worker", "--name", "w2"], environ, tmp_path / "w2.log")]
    try:
        async with aiohttp.ClientSession() as http:
            await wait_healthy(http, healthz, 30)

            async def workers_alive() -> bool:
                return all([await env.redis.exists(env.rt.keys.worker_alive(w))
                            for w in ("w1", "w2")])
            await env.wait(workers_alive, 30, "two workers running")
            assert (await env.service.confirm(COUNTY_OFFICER, nid)).ok
            confirmed = time.monotonic()
            total = len(env.city.groups)
            if moment == "mid_sending":
                async def underway() -> bool:
                    counts = await env.rt.state.counts(nid)
                    return total - counts.get(PairState.PLANNED, 0) >= total * 0.4
                await env.wait(underway, 20, "40 % under way")
            elif moment == "near_deadline":
                notice = await env.rt.notices.get(nid)
                assert notice is not None
                await asyncio.sleep(env.clock.real(notice.deadline_at - 20 - env.clock.now()))
            else:
                await asyncio.sleep(0.05)  # the start job is being taken up right now
                assert time.monotonic() - confirmed < 0.25
            seen = await kill_and_restart(own_redis, http, healthz)
            assert 200 not in seen, seen  # unhealthy while Redis is down
            await wait_healthy(http, healthz, 20)  # and healthy again: its loops came back
            await env.settled(nid, 150)
            for proc in procs:
                assert proc.proc.poll() is None, f"{proc.log.name} exited"
    finally:
        for proc in procs:
            proc.stop()

    pairs = await env.rt.state.pairs(nid)
    for group in env.city.groups:
        got = [d for d in env.sim.deliveries_to(group.chat_id) if has_marker(d.content, nid)]
        assert len(got) <= 1, (group.chat_id, len(got))  # never twice
        state = pairs[group.chat_id].state
        if state is PairState.DELIVERED:
            assert got, group.chat_id
        else:  # not delivered: named to the officer under a heading
            assert state in (PairState.FAILED, PairState.UNCERTAIN, PairState.LATE), state
    report = "\n".join(d.content for d in env.sim.app_messages_to(COUNTY_OFFICER))
    match = HEADER.search(report)
    assert match, report[:500]
    figures = [int(n) for n in re.findall(r"(?:已送达|失败|状态不明|未确认|未发出|发送中) (\d+)",
                                         match.group(2))]
    assert int(match.group(1)) == total == sum(figures), match.group(0)


@pytest.mark.timeout(120)
async def test_a_loop_that_cannot_recover_exits_non_zero(make_env: MakeEnv,
                                                        own_redis: EmbeddedRedis,
                                                        tmp_path: Path) -> None:
    """Redis gone for good: `gridbot worker` and `gridbot serve` give up after
    redis.give_up_seconds and exit 1, for their supervisor to restart them."""
    env = await make_env()
    port = free_port()
    environ = serve_env(env, port, GRIDBOT_REDIS__GIVE_UP_SECONDS="3")
    serve = Process(["serve"], environ, tmp_path / "serve.log")
    worker = Process(["worker", "--name", "w1"], environ, tmp_path / "w1.log")
    try:
        async with aiohttp.ClientSession() as http:
            await wait_healthy(http, f"http://127.0.0.1:{port}/healthz", 30)
        await env.wait(lambda: env.redis.exists(env.rt.keys.worker_alive("w1")), 30, "worker")
        own_redis.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        codes = [await asyncio.to_thread(p.proc.wait, 60) for p in (serve, worker)]
        assert codes == [1, 1], (codes, serve.log.read_text()[-2000:])
    finally:
        serve.stop()
        worker.stop()
        own_redis.start()  # for the fixtures' clean-up
