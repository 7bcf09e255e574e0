"""`gridbot cases …` in a separate process: the assessment table and files, an officer's
command, and a refusal (exit code 3, audited)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import openpyxl

from bot.audit import AuditLog
from tests.cases.conftest import TOWNSHIP, Chat
from tests.conftest import ROOT, test_secrets


def gridbot(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **test_secrets(), "GRIDBOT_REDIS__URL": redis_url}
    return subprocess.run([sys.executable, "-m", "bot", "--settings", str(ROOT / "settings.toml"),
                           "cases", *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)


async def test_cli_assess_show_and_refusal(chat: Chat, redis_url: str, tmp_path: Path) -> None:
    svc = chat.service
    number = (await svc.report("w1", "消防通道堆物")).case.id
    await svc.accept("p1", number)
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    day_after = today + dt.timedelta(days=2)
    run = await asyncio.to_thread(
        gridbot, redis_url, "assess", "--from", (today - dt.timedelta(days=1)).isoformat(),
        "--to", day_after.isoformat(), "--level", "乡镇街道", "--under", "141181",
        "--csv", str(tmp_path / "k.csv"), "--xlsx", str(tmp_path / "k.xlsx"))
    assert run.returncode == 0, run.stderr
    assert f"{TOWNSHIP} | 新义街道 | 1 | 100.0%" in run.stdout
    assert openpyxl.load_workbook(tmp_path / "k.xlsx")["按民警"].max_row >= 2
    shown = await asyncio.to_thread(gridbot, redis_url, "show", number, "--as", "p1")
    assert shown.returncode == 0 and "接单" in shown.stdout
    refused = await asyncio.to_thread(gridbot, redis_url, "close", number, "完成", "--as", "p2")
    assert refused.returncode == 3 and "拒绝" in refused.stdout
    entries = await AuditLog(chat.ctx.redis, chat.ctx.keys, chat.ctx.clock).entries(actor="p2")
    assert entries and entries[0].outcome == "refused" and entries[0].source == "cli:console"
