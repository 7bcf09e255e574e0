"""The HTTP API and the CLI act as an officer, with the same checks and audit as app chat."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable

from pytest_aiohttp import AiohttpClient

from bot.app import create_app
from bot.audit import AuditLog
from broadcasts import api
from broadcasts.apikeys import ApiKeys
from broadcasts.models import NoticeStatus
from handlers import ROUTERS
from tests.broadcasts.conftest import COUNTY_OFFICER, ROOT, Env

MakeEnv = Callable[..., Awaitable[Env]]


async def test_http_api_with_officer_bound_keys(make_env: MakeEnv,
                                                aiohttp_client: AiohttpClient) -> None:
    env = await make_env()
    app = create_app(env.settings, ROUTERS, clock=env.clock, run_consumer=False,
                     run_scheduler=False, extensions=[api.extension])
    client = await aiohttp_client(app)
    keys = ApiKeys(env.redis, env.rt.keys, env.clock)
    key, _ = await keys.create(COUNTY_OFFICER, "指挥中心")

    denied = await client.post("/api/broadcasts", json={"text": "通知 紧急 范围：交口县 内容：x"})
    assert denied.status == 401
    auth = {"Authorization": f"Bearer {key}"}
    created = await client.post("/api/broadcasts", headers=auth,
                                json={"text": "通知 紧急预警 范围：交口县 内容：暴雨预警"})
    body = await created.json()
    assert created.status == 200 and body["ok"] and body["groups"] == len(env.city.groups)
    nid = body["notice_id"]
    outside = await client.post("/api/broadcasts", headers=auth, json={
        "level": "协查通报", "targets": ["吕梁市"], "text": "协查"})
    assert outside.status == 403 and "辖区" in (await outside.json())["message"]
    bad = await client.post("/api/broadcasts", headers=auth, json={"level": "x", "text": "y"})
    assert bad.status == 400

    confirmed = await client.post(f"/api/broadcasts/{nid}/confirm", headers=auth)
    assert confirmed.status == 200, await confirmed.text()
    notice = await env.rt.notices.get(nid)
    assert notice is not None and notice.status is NoticeStatus.SENDING
    progress = await client.get(f"/api/broadcasts/{nid}", headers=auth)
    data = await progress.json()
    assert data["status"] == "sending" and data["total"] == len(env.city.groups)
    groups = await (await client.get(f"/api/broadcasts/{nid}/groups", headers=auth)).json()
    assert len(groups["groups"]) == len(env.city.groups)

    audit = AuditLog(env.redis, env.keys, env.clock)
    assert [e.outcome for e in await audit.entries(actor="api")] == ["refused"]
    issued = await audit.entries(actor=COUNTY_OFFICER, action="broadcast.issue")
    assert sorted(e.outcome for e in issued) == ["ok", "refused", "refused"]
    assert all(e.source.startswith("api:") for e in issued)


def gridbot_cli(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "--settings", str(ROOT / "settings.toml"), *args],
        env=env.subprocess_env(), cwd=ROOT, capture_output=True, text=True, timeout=60)


async def test_cli_commands_are_checked_and_audited(make_env: MakeEnv) -> None:
    env = await make_env()
    made = await asyncio.to_thread(gridbot_cli, env, "broadcast", "apikey", "create",
                                   "--officer", COUNTY_OFFICER, "--label", "测试")
    assert made.returncode == 0, made.stderr
    key = re.search(r"gbk_\S+", made.stdout)
    assert key and await ApiKeys(env.redis, env.rt.keys, env.clock).officer_for(
        key.group(0)) == COUNTY_OFFICER
    issued = await asyncio.to_thread(gridbot_cli, env, "broadcast", "issue", "--as",
                                     COUNTY_OFFICER, "通知 普通 范围：交口县 内容：CLI 测试")
    assert issued.returncode == 0 and "预览" in issued.stdout, issued.stdout + issued.stderr
    nid = (await env.rt.notices.latest_of(COUNTY_OFFICER))[0]
    grid_worker = next(p.userid for p in env.city.people if p.role.value == "grid_worker")
    refused = await asyncio.to_thread(gridbot_cli, env, "broadcast", "confirm", "--as",
                                      grid_worker, str(nid))
    assert refused.returncode == 1 and "不是您发布的" in refused.stdout
    audit = AuditLog(env.redis, env.keys, env.clock)
    entries = await audit.entries(action="broadcast.confirm")
    assert [(e.actor, e.outcome, e.source) for e in entries] == [
        (grid_worker, "refused", "cli:console")]  # --as is unproven: marked as the console's


async def test_keys_need_bearer_expire_and_revoke(make_env: MakeEnv,
                                                 aiohttp_client: AiohttpClient) -> None:
    """Issue 10: a key without `Bearer `, an expired key and a revoked key get 401, audited;
    creating, listing and revoking keys (CLI) is audited too."""
    env = await make_env(speed=20)
    app = create_app(env.settings, ROUTERS, clock=env.clock, run_consumer=False,
                     run_scheduler=False, extensions=[api.extension])
    client = await aiohttp_client(app)
    made = await asyncio.to_thread(gridbot_cli, env, "broadcast", "apikey", "create",
                                   "--officer", COUNTY_OFFICER, "--label", "值班")
    key = re.search(r"gbk_\S+", made.stdout)
    assert made.returncode == 0 and key and "有效期 90 天" in made.stdout, made.stdout
    good = key.group(0)
    short, _ = await env.rt.api_keys.create(COUNTY_OFFICER, "短期", days=0.0002)  # 17 s
    too_long = await asyncio.to_thread(gridbot_cli, env, "broadcast", "apikey", "create",
                                       "--officer", COUNTY_OFFICER, "--days", "400")
    assert too_long.returncode == 1 and "365" in too_long.stdout

    async def status(header: str) -> int:
        response = await client.get("/api/broadcasts/1", headers={"Authorization": header})
        return response.status

    assert await status(f"Bearer {good}") == 400  # let in: "no such notice" is the answer
    assert await status(good) == 401  # the bare key, no scheme
    assert await status(f"Token {good}") == 401
    await asyncio.sleep(env.clock.real(20))  # the short key's life runs out
    assert await status(f"Bearer {short}") == 401
    listing = await asyncio.to_thread(gridbot_cli, env, "broadcast", "apikey", "list")
    assert "已过期" in listing.stdout and "有效" in listing.stdout, listing.stdout
    key_id = next(line.split()[0] for line in listing.stdout.splitlines() if "值班" in line)
    revoked = await asyncio.to_thread(gridbot_cli, env, "broadcast", "apikey", "revoke",
                                      "--key-id", key_id)
    assert revoked.returncode == 0
    assert await status(f"Bearer {good}") == 401

    audit = AuditLog(env.redis, env.keys, env.clock)
    refusals = [e.detail for e in reversed(await audit.entries(actor="api"))]
    assert len(refusals) == 4, refusals
    assert all("Bearer" in r for r in refusals[:2])
    assert "已过期" in refusals[2] and "已吊销" in refusals[3] and key_id in refusals[3]
    managed = [(e.action, e.outcome, e.source) for e in reversed(await audit.entries(actor="cli"))]
    assert managed == [("broadcast.apikey.create", "ok", "cli:console"),
                       ("broadcast.apikey.create", "refused", "cli:console"),
                       ("broadcast.apikey.list", "ok", "cli:console"),
                       ("broadcast.apikey.revoke", "ok", "cli:console")]
