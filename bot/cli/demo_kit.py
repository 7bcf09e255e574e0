"""What every demo step uses: the simulated actors, the running `Demo` and its helpers, `Step`.

Kept apart from bot/cli/demo.py (which assembles and plays the steps) so that step modules of
any package can import it without importing the list of steps that imports them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot import appkeys
from bot.clock import Clock
from bot.inbox import handled_records
from bot.masking import scrub
from bot.settings import Settings
from registry.models import Level, Node, Role

REPLY_TIMEOUT = 15.0  # real seconds


@dataclass(frozen=True, slots=True)
class Actor:
    """A simulated WeCom member."""

    userid: str
    name: str
    role: Role
    nodes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.name}（{self.role.label}）"


CITY = (
    Node("141100", "吕梁市", Level.CITY),
    Node("141102", "离石区", Level.COUNTY, "141100"),
    Node("141102002", "滨河街道", Level.TOWNSHIP, "141102"),
    Node("141102002001", "龙凤社区", Level.VILLAGE, "141102002", urban=True),
    Node("141102002001-G01", "龙凤社区第一网格", Level.GRID, "141102002001", urban=True),
    Node("141102002001-G01-B003", "3号楼", Level.BUILDING, "141102002001-G01", urban=True),
)
OFFICER = Actor("li_jingguan", "李警官", Role.OFFICER, ("141102002",))
GRID_WORKER = Actor("wang_wanggeyuan", "王网格", Role.GRID_WORKER, ("141102002001-G01",))
NEWCOMER = Actor("zhao_xinren", "赵新人", Role.GRID_WORKER)  # not in the registry yet


@dataclass
class Demo:
    """The running demo: simulator, bot app and narration helpers for the steps."""

    settings: Settings
    clock: Clock
    sim: Any  # bot.wecom.simulator.WeComSimulator (imported lazily: a sibling package)
    app: web.Application
    out: Callable[[str], None] = print
    failures: list[str] = field(default_factory=list)
    notice_id: int = 0  # the notice the broadcast steps follow
    notice_groups: int = 0
    notice_started: float = 0.0

    def say(self, text: str) -> None:
        """Print one line of narration."""
        self.out(text)

    def fail(self, text: str) -> None:
        """Print and remember something that did not happen as expected."""
        self.failures.append(text)
        self.say(f"  ✗ {text}")

    async def send(self, actor: Actor, text: str) -> list[str]:
        """`actor` types `text` to the app; returns the bot's replies to it."""
        before = len(self.sim.app_messages_to(actor.userid))
        # what the actor typed is narrated masked too: the console is somewhere it is shown
        shown = scrub(text).replace("\n", "\n      ")
        self.say(f"  → {actor.label} 发送：{shown}")
        result = await self.sim.post_text(actor.userid, text)
        self.show_ack(result)
        return await self.wait_replies(actor, before + 1)

    async def wait_replies(self, actor: Actor, count: int) -> list[str]:
        """Wait until `actor` has `count` app messages; print and return the new ones."""
        deadline = time.monotonic() + REPLY_TIMEOUT
        while len(self.sim.app_messages_to(actor.userid)) < count:
            if time.monotonic() > deadline:
                self.fail(f"{REPLY_TIMEOUT:.0f} 秒内没有收到机器人的回复")
                return []
            await asyncio.sleep(0.05)
        replies = [d.content for d in self.sim.app_messages_to(actor.userid)[count - 1:]]
        for reply in replies:
            self.say(f"  ← 机器人回复{actor.name}：" + reply.replace("\n", "\n      "))
        return replies

    async def handled(self) -> int:
        """How many callbacks the bot has finished handling."""
        app = self.app
        return len(await handled_records(app[appkeys.redis], app[appkeys.keys]))

    async def wait_handled(self, count: int) -> bool:
        """Wait until `count` callbacks are handled."""
        deadline = time.monotonic() + REPLY_TIMEOUT
        while await self.handled() < count:
            if time.monotonic() > deadline:
                self.fail(f"{REPLY_TIMEOUT:.0f} 秒内机器人没有处理完回调")
                return False
            await asyncio.sleep(0.05)
        return True

    def show_ack(self, result: Any) -> None:
        """Narrate how the bot acknowledged a simulator CallbackResult."""
        attempt = result.attempts[-1] if result.attempts else None
        if attempt is not None and attempt.status == 200:
            millis = attempt.elapsed * 1000
            self.say(f"    （企业微信回调已确认：HTTP 200，用时 {millis:.0f} 毫秒）")
        else:
            self.fail(f"回调未被确认：{attempt.status if attempt else '无应答'}")


Run = Callable[[Demo], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Step:
    """One scenario step: a title and what happens."""

    title: str
    run: Run
