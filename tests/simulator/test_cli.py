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
from typing import Any

import aiohttp
from pytest_aiohttp import AiohttpServer

from bot.settings import Settings
from bot.wecom.simulator import cli
from registry.divisions import COUNTIES
from registry.synthetic import City, generate_city
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


def _city_csv(tmp_path: Path) -> tuple[City, Path]:
    """A small synthetic city written as the registry's import files."""
    city = generate_city(seed=5, total_groups=300, residents=9000, counties=(COUNTIES[0].code,))
    path = tmp_path / "groups.csv"
    city.write_csv(path)
    return city, path


async def test_build_simulator_from_settings_and_csv(
    make_settings: Callable[..., Settings], tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    settings = make_settings()
    city, path = _city_csv(tmp_path)
    args = _parser().parse_args(
        [
            "sim",
            "--groups",
            str(path),
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
    tables = sim.state.groups
    assert len(tables.customer) + len(tables.appchats) + len(tables.robots) == len(city.groups)
    first = next(g for g in city.groups if g.chat_id in tables.customer)
    group = sim.group(first.chat_id)
    assert group is not None and (group.owner, group.name) == (first.owner, first.name)
    assert set(city.users()) <= set(sim.state.directory.users)
    server = await aiohttp_server(sim.app)
    async with aiohttp.ClientSession() as session:
        params = {"corpid": config.corp_id, "corpsecret": config.secret}
        async with session.get(server.make_url("/cgi-bin/gettoken"), params=params) as resp:
            assert (await resp.json())["errcode"] == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_ready(url: str, process: asyncio.subprocess.Process) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            assert process.returncode is None, "gridbot sim exited early"
            try:
                async with session.get(url) as resp:
                    data: dict[str, Any] = await resp.json()
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
        str(_city_csv(tmp_path)[1]),
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
        assert stats["groups"] > 100
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)
