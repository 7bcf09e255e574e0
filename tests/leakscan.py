"""Suite-wide scan for leaked personal numbers (issue 5: "no full ID number or phone number
appears in any chat reply, log line or error during the whole test suite").

Installed from tests/conftest.py. For every test it captures
- every log record, as logged (before the production ScrubFilter; code must not rely on it),
- every message the WeCom simulator delivered or dropped (chat replies, group notices),
- every HTTP error body (status >= 400) any GridBot app answered,
and fails the test when one contains a full mainland ID number (checksum-valid) or mobile.
Findings are counted for the whole session; tests/zz/test_leakscan.py asserts the total.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
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
    _SIMULATORS.clear()
    if hits:
        pytest.fail("personal numbers leaked: " + "; ".join(hits[:5]), pytrace=False)
