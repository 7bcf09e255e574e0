"""`gridbot serve` as a real subprocess: crash safety, clean stop, settings errors."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from bot.inbox import SHARDS, handled_records
from bot.keys import Keys
from bot.redis import free_port
from bot.settings import load_settings
from tests.bot.support import (
    ROOT,
    crypto_for,
    gridbot_command,
    gridbot_env,
    sealed_post,
    text_xml,
    wait_until,
)
from tests.conftest import test_secrets
from tests.wecom.fake import FakeWeCom

ServerFactory = Callable[..., Any]


class Bot:
    """One `gridbot serve` subprocess."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.port = port
        self._log = log.open("ab")
        self.process = subprocess.Popen(gridbot_command("serve"), cwd=ROOT, env=gridbot_env(env),
                                        stdout=self._log, stderr=self._log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self, http: aiohttp.ClientSession) -> None:
        async def healthy() -> bool:
            assert self.process.poll() is None, "gridbot serve exited early"
            try:
                async with http.get(self.url + "/healthz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await wait_until(healthy, timeout=20, what="gridbot serve to start")

    def wait(self, timeout: float = 15) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()


@pytest.fixture
def env_for(redis_url: str) -> Callable[..., dict[str, str]]:
    secrets = test_secrets()

    def build(**extra: str) -> dict[str, str]:
        return {**secrets, "GRIDBOT_REDIS__URL": redis_url, **extra}

    return build


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def bots() -> Iterator[list[Bot]]:
    started: list[Bot] = []
    yield started
    for bot in started:
        if bot.process.poll() is None:
            bot.process.kill()
            bot.wait()


async def test_sigkill_right_after_the_ack_loses_nothing(
    aiohttp_server: ServerFactory, redis: aioredis.Redis, keys: Keys, http: aiohttp.ClientSession,
    env_for: Callable[..., dict[str, str]], bots: list[Bot], tmp_path: Path,
) -> None:
    fake = FakeWeCom()
    fake.script("message/send", "hang")  # should the first process get that far, it hangs
    api = await aiohttp_server(fake.app())
    port = free_port()
    env = env_for(GRIDBOT_WECOM__API_BASE_URL=str(api.make_url("/cgi-bin/")),
                  GRIDBOT_SERVER__PORT=str(port), GRIDBOT_CALLBACK__CLAIM_IDLE_SECONDS="1",
                  GRIDBOT_WECOM__REQUEST_TIMEOUT="1")
    settings = load_settings(ROOT / "settings.toml", env)
    first = Bot(env, port, tmp_path / "bot.log")
    bots.append(first)
    await first.ready(http)

    query, body = sealed_post(crypto_for(settings), text_xml(
        settings.wecom.corp_id, "wangwu", "帮助", "88001", int(time.time())), int(time.time()))
    async with http.post(first.url + "/wecom/callback", params=query, data=body) as response:
        assert (response.status, await response.read()) == (200, b"")
    first.process.send_signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    lengths = [await redis.xlen(keys.inbox(shard)) for shard in range(SHARDS)]
    assert sum(lengths) == 1  # the ack meant: durably received

    second = Bot(env, port, tmp_path / "bot.log")
    bots.append(second)
    await second.ready(http)

    async def processed() -> bool:
        return any(r.key == "msg:88001" and r.outcome == "ok"
                   for r in await handled_records(redis, keys))

    await wait_until(processed, timeout=15, what="the message to be processed after restart")
    assert [r.key for r in await handled_records(redis, keys)] == ["msg:88001"]
    replies = [s.body["text"]["content"] for s in fake.requests("message/send")]
    assert replies and "可以使用以下命令" in replies[-1]
    second.process.send_signal(signal.SIGTERM)
    assert second.wait() == 0


async def test_sigterm_stops_cleanly_including_the_embedded_redis(
    env_for: Callable[..., dict[str, str]], http: aiohttp.ClientSession, bots: list[Bot],
    tmp_path: Path,
) -> None:
    port, data_dir = free_port(), tmp_path / "embedded-redis"
    env = env_for(GRIDBOT_REDIS__URL="", GRIDBOT_REDIS__DATA_DIR=str(data_dir),
                  GRIDBOT_SERVER__PORT=str(port))
    bot = Bot(env, port, tmp_path / "bot.log")
    bots.append(bot)
    await bot.ready(http)
    embedded = embedded_redis(bot.process.pid, data_dir)
    bot.process.send_signal(signal.SIGTERM)
    assert bot.wait() == 0
    await asyncio.sleep(0.2)
    assert not is_running(embedded)
    assert "GridBot 已停止" in read_log(tmp_path / "bot.log")


def embedded_redis(parent: int, data_dir: Path) -> int:
    """The pid of the redis-server `parent` started, with its files in `data_dir`."""
    [pid] = children_of(parent)
    assert "redis-server" in Path(f"/proc/{pid}/cmdline").read_text()
    assert any(data_dir.iterdir())
    return pid


def is_running(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def read_log(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def children_of(pid: int) -> list[int]:
    """Pids of the running child processes of `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"GRIDBOT_SERVER__PORT": "八千"}, "server.port"),
        ({"GRIDBOT_WECOM__TOKEN": None}, "wecom.token"),
        ({"GRIDBOT_WECOM__ENCODING_AES_KEY": "too-short-secret-value"}, "wecom.encoding_aes_key"),
    ],
)
def test_bad_settings_print_one_line_naming_the_key_and_no_secret(
    change: dict[str, str | None], key: str, env_for: Callable[..., dict[str, str]],
) -> None:
    env = env_for()
    for name, value in change.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value
    done = subprocess.run(gridbot_command("--settings", "settings.toml", "serve"), cwd=ROOT,
                          env=gridbot_env(env), capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and "配置错误" in lines[0]
    secrets = [v for k, v in env.items() if k.startswith("GRIDBOT_") and "URL" not in k
               and k not in ("GRIDBOT_WECOM__CORP_ID", "GRIDBOT_WECOM__AGENT_ID",
                             "GRIDBOT_SERVER__PORT")]
    assert secrets and not any(s in done.stderr + done.stdout for s in secrets)

