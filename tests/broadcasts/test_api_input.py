"""Issue 10: bad input to the broadcast HTTP API is refused before anything is stored.

One table over the API's inputs: each answer is 400 with a Chinese message naming the field,
Redis is unchanged but for one audit entry recording the refusal. (Found by an outside test:
schedule_at 1e308 or NaN answered 500 after storing the notice; -1 was accepted; an image_url
of file:///etc/passwd was kept.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from bot.app import create_app
from bot.audit import AuditLog
from broadcasts import api
from broadcasts.apikeys import ApiKeys
from handlers import ROUTERS
from tests.broadcasts.conftest import COUNTY_OFFICER, Env

MakeEnv = Callable[..., Awaitable[Env]]
NOW = time.time()  # the sped-up clock runs ahead of it, never behind
GOOD: dict[str, Any] = {"level": "urgent", "targets": ["交口县"], "text": "今晚有大风"}
PLAIN = "通知 紧急预警 范围：交口县 内容：今晚有大风"


def with_(**fields: Any) -> str:
    return json.dumps({**GOOD, **fields}, ensure_ascii=False, allow_nan=True)


# (case, path under /api/broadcasts, raw body, what the message must name)
CASES: list[tuple[str, str, str | bytes, str]] = [
    ("schedule_at 1e308", "", with_(schedule_at=1e308), "schedule_at"),
    ("schedule_at NaN", "", with_(schedule_at=float("nan")), "schedule_at"),
    ("schedule_at Infinity", "", with_(schedule_at=float("inf")), "schedule_at"),
    ("schedule_at -Infinity", "", with_(schedule_at=float("-inf")), "schedule_at"),
    ("schedule_at -1", "", with_(schedule_at=-1), "schedule_at"),
    ("schedule_at 0", "", with_(schedule_at=0), "schedule_at"),
    ("schedule_at an hour ago", "", with_(schedule_at=NOW - 3600), "schedule_at"),
    ("schedule_at in 400 days", "", with_(schedule_at=NOW + 400 * 86400), "schedule_at"),
    ("schedule_at 10**400", "", with_(schedule_at=10**400), "schedule_at"),
    ("schedule_at true", "", with_(schedule_at=True), "schedule_at"),
    ("schedule_at an object", "", with_(schedule_at={"at": 1}), "schedule_at"),
    ("schedule_at text in the past", "", with_(schedule_at="2020-01-01 08:00"), "2020-01-01"),
    ("schedule_at text no time", "", with_(schedule_at="下周某天"), "下周某天"),
    ("schedule_at text too far", "", with_(schedule_at="2099-01-01 08:00"), "schedule_at"),
    ("level unknown", "", with_(level="x"), "level"),
    ("level a number", "", with_(level=5), "level"),
    ("text empty", "", with_(text=" "), "text"),
    ("text a number", "", with_(text=123), "text"),
    ("text too long", "", with_(text="风" * 5000), "text"),
    ("markdown a string", "", with_(markdown="yes"), "markdown"),
    ("markdown NaN", "", with_(markdown=float("nan")), "markdown"),
    ("image_url file:", "", with_(image_url="file:///etc/passwd"), "image_url"),
    ("image_url javascript:", "", with_(image_url="javascript:alert(1)"), "image_url"),
    ("image_url no host", "", with_(image_url="https://"), "image_url"),
    ("image_url a list", "", with_(image_url=["http://a"]), "image_url"),
    ("link_url ftp:", "", with_(link_url="ftp://example.com/x"), "link_url"),
    ("link_url too long", "", with_(link_url="https://a.cn/" + "x" * 3000), "link_url"),
    ("link_title too long", "", with_(link_title="题" * 500), "link_title"),
    ("targets a string", "", with_(targets="交口县"), "targets"),
    ("targets numbers", "", with_(targets=[1, 2]), "targets"),
    ("targets empty", "", with_(targets=[]), "targets"),
    ("targets an empty name", "", with_(targets=[""]), "targets"),
    ("targets too many", "", with_(targets=["交口县"] * 500), "targets"),
    ("exclude a string", "", with_(exclude="x"), "exclude"),
    ("tags with null", "", with_(tags=[None]), "tags"),
    ("an unknown field", "", with_(foo=1), "foo"),
    ("body an array", "", "[]", "JSON"),
    ("body not JSON", "", "通知", "JSON"),
    ("body not UTF-8", "", b"\xff\xfe{}", "JSON"),
    ("body too large", "", with_(text="x" * 70_000), "请求体"),
    ("plain text a number", "", json.dumps({"text": 5}), "text"),
    ("plain text empty", "", json.dumps({"text": ""}), "text"),
    ("plain text with schedule_at", "", json.dumps({"text": PLAIN, "schedule_at": 1}),
     "schedule_at"),
    ("plain text 定时 in the past", "",
     json.dumps({"text": "定时 2020-01-01 08:00 " + PLAIN}, ensure_ascii=False), "定时"),
    ("plain text 定时 too far", "",
     json.dumps({"text": "定时 2099-01-01 08:00 " + PLAIN}, ensure_ascii=False), "定时"),
    ("follow-up kind unknown", "/1/followups", json.dumps({"kind": "bogus"}), "kind"),
    ("follow-up kind a number", "/1/followups", json.dumps({"kind": 1}), "kind"),
    ("follow-up text a number", "/1/followups", json.dumps({"kind": "update", "text": 5}),
     "text"),
    ("follow-up unknown field", "/1/followups", json.dumps({"kind": "update", "x": 1}), "x"),
    ("follow-up body an array", "/1/followups", "[1]", "JSON"),
]


@pytest.fixture
async def api_client(make_env: MakeEnv, aiohttp_client: AiohttpClient
                     ) -> tuple[Env, TestClient, dict[str, str]]:
    env = await make_env()
    app = create_app(env.settings, ROUTERS, clock=env.clock, run_consumer=False,
                     run_scheduler=False, extensions=[api.extension])
    client: TestClient = await aiohttp_client(app)
    key, _ = await ApiKeys(env.redis, env.rt.keys, env.clock).create(COUNTY_OFFICER, "测试")
    return env, client, {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


async def footprint(env: Env) -> dict[str, bytes]:
    """Every key but the audit stream, with its serialised value."""
    audit = env.keys.audit()
    out = {}
    async for key in env.redis.scan_iter(count=1000):
        if key != audit:
            out[key] = await env.redis.dump(key)
    return out


async def test_bad_input_is_refused_before_anything_is_stored(
        api_client: tuple[Env, TestClient, dict[str, str]]) -> None:
    env, client, headers = api_client
    audit = AuditLog(env.redis, env.keys, env.clock)
    before = await footprint(env)
    seen = len(await audit.entries())
    failures = []
    for case, path, body, names in CASES:
        response = await client.post("/api/broadcasts" + path, data=body, headers=headers)
        answer = await response.json()
        entries = await audit.entries()
        if (response.status != 400 or names not in answer["message"] or answer["ok"]
                or not any("\u4e00" <= ch <= "\u9fff" for ch in answer["message"])):
            failures.append((case, response.status, answer))
        elif len(entries) != seen + 1 or entries[0].outcome not in ("refused", "error") \
                or entries[0].actor != COUNTY_OFFICER or entries[0].detail != answer["message"]:
            failures.append((case, "audit", entries[0]))
        seen = len(entries)
    assert failures == []
    assert await footprint(env) == before  # nothing changed but the audit


async def test_good_input_still_works_and_links_must_be_http(
        api_client: tuple[Env, TestClient, dict[str, str]]) -> None:
    """Control: the same client and key get a notice planned from a valid request."""
    env, client, headers = api_client
    response = await client.post("/api/broadcasts", headers=headers, data=with_(
        image_url="https://example.com/a.png", link_url="http://example.com/x"))
    answer = await response.json()
    assert response.status == 200 and answer["ok"], answer
    notice = await env.rt.notices.get(answer["notice_id"])
    assert notice is not None and notice.content.image_url == "https://example.com/a.png"
