"""`gridbot sim`: options, settings, the CSV loader, and the standalone server."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
from pytest_aiohttp import AiohttpServer

from bot.settings import Settings
from bot.wecom.simulator import cli
from tests.conftest import ROOT, test_secrets

DRIVER = (
    "import argparse, sys\n"
    "from bot.wecom.simulator import cli\n"
    "p = argparse.ArgumentParser(); p.add_argument('--settings')\n"
    "cli.register(p.add_subparsers(dest='command', required=True))\n"
    "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))\n"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings")
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "groups.csv"
    path.write_text(
        "chat_id,name,kind,owner,member_count,webhook_key,quota_used\n"
        "wr1,东关1号楼,customer_group,w1,80,,2\n"
        "wr2,东关2号楼,,w2,60,,\n"
        "rb1,机器人群,webhook,,,key-1,\n"
        "app1,内部群,appchat,w1,3,,\n",
        encoding="utf-8",
    )
    return path


async def test_build_simulator_from_settings_and_csv(
    make_settings: Callable[..., Settings], tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    settings = make_settings()
    args = _parser().parse_args(
        [
            "sim",
            "--groups",
            str(_csv(tmp_path)),
            "--seed",
            "3",
            "--latency-ms",
            "0",
            "--speed",
            "50",
            "--origin",
            "1700000000",
            "--fault-rate",
            "0.1",
        ]
    )
    sim = cli.build_simulator(args, settings)
    config = sim.config
    assert (config.corp_id, config.agent_id) == (settings.wecom.corp_id, settings.wecom.agent_id)
    assert config.secret == settings.wecom.secret.get_secret_value()
    assert config.callback_url.endswith(settings.callback.path)
    assert (config.clock.speed, config.clock.origin, config.seed) == (50.0, 1700000000.0, 3)
    assert config.faults[0].rate == 0.1 and config.latency.median == 0
    group = sim.group("wr1")
    assert group is not None and (group.owner, group.member_count) == ("w1", 80)
    assert sim.state.groups.robots == {"key-1": "rb1"}
    assert sim.state.groups.appchats["app1"].members == ("w1", "w1", "w1")
    assert {"w1", "w2"} <= set(sim.state.directory.users)
    server = await aiohttp_server(sim.app)
    async with aiohttp.ClientSession() as session:
        params = {"corpid": config.corp_id, "corpsecret": config.secret}
        async with session.get(server.make_url("/cgi-bin/gettoken"), params=params) as resp:
            assert (await resp.json())["errcode"] == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_ready(url: str, process: asyncio.subprocess.Process) -> dict[str, object]:
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            assert process.returncode is None, "gridbot sim exited early"
            try:
                async with session.get(url) as resp:
                    data: dict[str, object] = await resp.json()
                    return data
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    raise AssertionError("gridbot sim did not start")


async def test_sim_command_serves_standalone(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, **test_secrets()}
    args = [
        "--settings",
        str(ROOT / "settings.toml"),
        "sim",
        "--port",
        str(port),
        "--groups",
        str(_csv(tmp_path)),
        "--latency-ms",
        "0",
    ]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        DRIVER,
        *args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        stats = await _wait_ready(f"http://127.0.0.1:{port}/sim/stats", process)
        assert stats["groups"] == 2
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)
