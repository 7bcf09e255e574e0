"""Suite-wide scan for leaked personal numbers (issue 5: "no full ID number or phone number
appears in any chat reply, log line or error during the whole test suite").

Installed from tests/conftest.py. For every test it captures
- every log record, as logged (before the production ScrubFilter; code must not rely on it),
- every message the WeCom simulator delivered or dropped (chat replies, group notices),
- every HTTP error body (status >= 400) any GridBot app answered,
- every key the test left in Redis (the `redis` fixture scans them before flushing; issue 10),
and fails the test when one contains a full mainland ID number (checksum-valid) or mobile.
Findings are counted for the whole session; tests/zz/test_leakscan.py asserts the total and
scans the AOF and RDB files of every embedded redis-server the suite started (their data
directories are recorded here), skipping only the tests' own bookkeeping keys (`test:…`).
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

_ID18 = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")
# alphanumeric boundaries, as for IDs: hex signatures and tokens in URLs hold digit runs
_MOBILE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _is_id_number(value: str) -> bool:
    total = sum(int(d) * w for d, w in zip(value[:17], _WEIGHTS, strict=True))
    return "10X98765432"[total % 11] == value[17].upper()


def find_leaks(text: str) -> list[str]:
    """Full ID numbers (valid check character) and mobile numbers in `text`, masked for display."""
    found = [m.group(0) for m in _ID18.finditer(text) if _is_id_number(m.group(0))]
    found += [m.group(0) for m in _MOBILE.finditer(text)]
    return [f[:3] + "…" + f[-2:] for f in found]


@dataclass
class LeakLedger:
    """What the session saw: how many texts were scanned, which leaked (masked)."""

    scanned: int = 0
    leaks: list[str] = field(default_factory=list)

    def scan(self, where: str, text: str) -> list[str]:
        self.scanned += 1
        hits = [f"{where}: {hit}" for hit in find_leaks(text)]
        self.leaks.extend(hits)
        return hits


LEDGER = LeakLedger()
_SIMULATORS: weakref.WeakSet[Any] = weakref.WeakSet()


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a broken log call is not ours to judge here
            return
        if record.exc_info and record.exc_info[1] is not None:
            text += " " + str(record.exc_info[1])
        self.texts.append(text)


def _track_simulators() -> None:
    from bot.wecom.simulator.simulator import WeComSimulator

    if getattr(WeComSimulator, "_leakscan_tracked", False):
        return
    original = WeComSimulator.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        _SIMULATORS.add(self)

    WeComSimulator.__init__ = init  # type: ignore[method-assign]
    WeComSimulator._leakscan_tracked = True  # type: ignore[attr-defined]


def _track_error_bodies(bodies: list[str]) -> None:
    """Record bodies of 4xx/5xx answers of every aiohttp app created from now on."""
    original = web.Application.__init__
    if getattr(web.Application, "_leakscan_tracked", False):
        return

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        if response.status >= 400 and isinstance(response, web.Response) and response.body:
            body = response.body
            if isinstance(body, bytes | bytearray):
                bodies.append(bytes(body).decode("utf-8", "replace"))

    def init(self: web.Application, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.on_response_prepare.append(on_prepare)

    web.Application.__init__ = init  # type: ignore[method-assign]
    web.Application._leakscan_tracked = True  # type: ignore[attr-defined]


_ERROR_BODIES: list[str] = []
_REDIS_HITS: list[str] = []  # found by the `redis` fixture's scan, failed by the guard below
DATA_DIRS: set[Path] = set()  # data directories of every embedded redis-server started
TEST_KEY_PREFIX = "test:"  # the tests' own bookkeeping keys (they record what handlers saw)


def track_redis_servers() -> None:
    """Record the data directory of every EmbeddedRedis started from now on."""
    from bot.redis import EmbeddedRedis

    if getattr(EmbeddedRedis, "_leakscan_tracked", False):
        return
    original = EmbeddedRedis.start

    def start(self: Any, *args: Any, **kwargs: Any) -> str:
        import redis

        DATA_DIRS.add(Path(self.data_dir).resolve())
        url: str = original(self, *args, **kwargs)
        # an AOF rewrite would otherwise start the file with an (LZF-compressed) RDB image,
        # which no text scan can read: keep the whole file in commands
        with redis.Redis.from_url(url, socket_timeout=5) as client:
            client.config_set("aof-use-rdb-preamble", "no")
        return url

    EmbeddedRedis.start = start  # type: ignore[method-assign]
    EmbeddedRedis._leakscan_tracked = True  # type: ignore[attr-defined]


def scan_redis(url: str, where: str = "redis") -> list[str]:
    """Every key of the server's database and its contents (any type, binary values
    included), through the ledger; the hits also fail the current test (the guard)."""
    from bot.redis import connect_sync

    client = connect_sync(url, socket_timeout=10)
    hits: list[str] = []
    try:
        for key in client.scan_iter(count=1000):
            name = _text(key)
            if name.startswith(TEST_KEY_PREFIX):
                continue
            hits += LEDGER.scan(f"{where} key {name}", name + " " + _text(_value(client, key)))
    finally:
        client.close()
    _REDIS_HITS.extend(hits)
    return hits


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return " ".join(f"{_text(k)} {_text(v)}" for k, v in value.items())
    if isinstance(value, list | set | tuple):
        return " ".join(_text(v) for v in value)
    return str(value)


def _value(client: Any, key: bytes) -> Any:
    kind = _text(client.type(key))
    reads = {"string": client.get, "hash": client.hgetall,
             "list": lambda k: client.lrange(k, 0, -1), "set": client.smembers,
             "zset": lambda k: client.zrange(k, 0, -1),
             "stream": lambda k: [fields for _, fields in client.xrange(k)]}
    read = reads.get(kind)
    return read(key) if read else ""


def aof_commands(data: bytes) -> Iterator[list[bytes]]:
    """The commands of an AOF (RESP arrays); anything else (an RDB preamble) as one blob."""
    pos, end = 0, len(data)
    while pos < end:
        if data[pos:pos + 1] != b"*":  # an RDB base or a truncated tail: scan it whole
            next_cmd = data.find(b"\r\n*", pos)
            stop = end if next_cmd < 0 else next_cmd + 2
            yield [b"", data[pos:stop]]
            pos = stop
            continue
        line_end = data.index(b"\r\n", pos)
        count, pos = int(data[pos + 1:line_end]), line_end + 2
        args = []
        for _ in range(count):
            line_end = data.index(b"\r\n", pos)
            length = int(data[pos + 1:line_end])
            args.append(data[line_end + 2:line_end + 2 + length])
            pos = line_end + 2 + length + 2
        yield args


def scan_data_files(dirs: set[Path] | None = None, ledger: LeakLedger | None = None
                    ) -> list[str]:
    """Scan every AOF and RDB file under the recorded data directories (issue 10)."""
    ledger = ledger or LEDGER
    hits: list[str] = []
    for directory in sorted(DATA_DIRS if dirs is None else dirs):
        for path in sorted(directory.rglob("*")):
            if not path.is_file() or path.suffix not in (".aof", ".rdb"):
                continue
            for args in aof_commands(path.read_bytes()):
                if len(args) > 1 and args[1].startswith(TEST_KEY_PREFIX.encode()):
                    continue
                text = " ".join(a.decode("utf-8", "replace") for a in args)
                hits += ledger.scan(f"{path.name}", text)
    return hits


def _simulator_texts() -> Iterator[tuple[str, str]]:
    for sim in list(_SIMULATORS):
        records = sim.records
        for delivery in list(records):
            yield f"{delivery.channel}→{delivery.target}", delivery.content
        for drop in list(getattr(records, "drops", [])):
            yield f"dropped {drop.channel}→{drop.target}", drop.content


@pytest.fixture(autouse=True)
def no_personal_number_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test when a reply, log line or error body carried a full ID or mobile number."""
    if request.node.get_closest_marker("leaks_expected"):
        yield
        _REDIS_HITS.clear()
        return
    _track_simulators()
    _track_error_bodies(_ERROR_BODIES)
    capture = _Capture()
    root = logging.getLogger()
    root.addHandler(capture)
    old_level = root.level
    root.setLevel(min(old_level or logging.WARNING, logging.DEBUG))
    _ERROR_BODIES.clear()
    try:
        yield
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
    hits: list[str] = []
    for text in capture.texts:
        hits += LEDGER.scan("log", text)
    for where, text in _simulator_texts():
        hits += LEDGER.scan(where, text)
    for body in _ERROR_BODIES:
        hits += LEDGER.scan("http error", body)
    hits += _REDIS_HITS
    _REDIS_HITS.clear()
    _SIMULATORS.clear()
    if hits:
        pytest.fail("personal numbers leaked: " + "; ".join(hits[:5]), pytrace=False)
