"""One Redis per data directory: commands beside a running `gridbot serve` on the embedded
Redis use its server, and a second `serve` on the same directory refuses."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.clock import Clock
from bot.keys import Keys
from bot.redis import connect, free_port
from registry.store import Registry
from tests.bot.support import ROOT, gridbot_command, gridbot_env
from tests.bot.test_serve import Bot, children_of
from tests.conftest import test_secrets

SAMPLE = ROOT / "registry" / "sample"


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


def embedded_env(tmp_path: Path, port: int) -> dict[str, str]:
    return {**test_secrets(), "GRIDBOT_REDIS__URL": "",
            "GRIDBOT_REDIS__DATA_DIR": str(tmp_path / "data"), "GRIDBOT_SERVER__PORT": str(port)}


def logged_redis(log: Path) -> str:
    """The Redis URL `serve` says it uses at start."""
    found = re.search(r"Redis: 内嵌 redis-server (redis://\S+)（数据目录 ", log.read_text("utf-8"))
    assert found, log.read_text("utf-8")
    return found.group(1)


async def test_groups_import_beside_serve_uses_its_redis(
    tmp_path: Path, http: aiohttp.ClientSession, bots: list[Bot],
) -> None:
    port = free_port()
    env = embedded_env(tmp_path, port)
    bot = Bot(env, port, tmp_path / "bot.log")
    bots.append(bot)
    await bot.ready(http)
    url = logged_redis(tmp_path / "bot.log")
    servers_before = children_of(bot.process.pid)

    files = [str(SAMPLE / f) for f in ("groups_sample_nodes.csv", "groups_sample_people.csv",
                                       "groups_sample.csv")]
    done = await asyncio.to_thread(
        subprocess.run, gridbot_command("groups", "import", *files), env=gridbot_env(env),
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr

    redis = connect(url)  # the running bot's own server sees the group at once
    try:
        registry = await Registry.open(redis, Keys("gridbot"), Clock())
        [group] = await registry.groups_named("孝义市-新义街道-东关社区-1号楼")
        assert group.chat_id == "wrSampleDongguan0B01"
    finally:
        await redis.aclose()
    assert children_of(bot.process.pid) == servers_before  # still the one redis-server
    assert len(servers_in(tmp_path / "data")) == 1


def servers_in(data_dir: Path) -> list[Path]:
    return [p for p in Path("/proc").glob("[0-9]*/cmdline") if _is_server_of(p, data_dir)]


def _is_server_of(cmdline: Path, data_dir: Path) -> bool:
    """A redis-server working in `data_dir` (it chdirs to its --dir)."""
    try:
        return (b"redis-server" in cmdline.read_bytes()
                and (cmdline.parent / "cwd").resolve() == data_dir.resolve())
    except OSError:
        return False


async def test_second_serve_on_the_same_data_directory_refuses(
    tmp_path: Path, http: aiohttp.ClientSession, bots: list[Bot],
) -> None:
    port = free_port()
    first = Bot(embedded_env(tmp_path, port), port, tmp_path / "first.log")
    bots.append(first)
    await first.ready(http)

    other = free_port()
    second = Bot(embedded_env(tmp_path, other), other, tmp_path / "second.log")
    bots.append(second)
    assert second.wait(timeout=30) == 2
    said = (tmp_path / "second.log").read_text("utf-8")
    assert "拒绝启动" in said and "已由另一个 gridbot serve" in said
    assert f"进程 {first.process.pid}" in said and "redis.data_dir" in said
    async with http.get(first.url + "/healthz") as response:  # the first one is untouched
        assert response.status == 200
