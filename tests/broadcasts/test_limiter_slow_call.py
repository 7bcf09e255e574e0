"""45009 right after a window reopens (issue 12): WeCom counts a call when it reaches it, the
limiter granted it earlier. A call held up longer than the limiter's guard (a loaded machine,
a slow network) must not let the next window's first call reach WeCom early."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from bot.wecom.errors import RateLimitedError
from broadcasts.limiter import Grant
from tests.broadcasts.conftest import Env

MEMBERS = 100  # one send spends the whole minute's person-times
ONE_A_MINUTE = {"GRIDBOT_BROADCAST__CEILINGS__APPCHAT_PERSON_TIMES_PER_MINUTE": str(MEMBERS)}
# simulated seconds the first request waits before WeCom counts it: longer than a minute and
# the guard (18 s at ×60), so a grant-time stamp has left the limiter's window by its answer
HELD = 90.0
CHAT = "app-slow"


async def _one_minute_env(make_env: Callable[..., Awaitable[Env]]) -> Env:
    env = await make_env(speed=60.0, env=ONE_A_MINUTE)
    env.sim.add_appchat(CHAT, "内部群", [f"u{i}" for i in range(MEMBERS)])
    return env


async def _held_send(env: Env, grant: Grant, *, restamp: bool) -> None:
    """Send with `grant`; the request is held in the simulator for HELD before it counts."""
    hold = env.sim.hold("appchat/send")

    async def send() -> None:
        if restamp:
            async with env.rt.limiter.restamped(grant):
                await env.rt.wecom.appchat_send(CHAT, "通知一")
        else:
            await env.rt.wecom.appchat_send(CHAT, "通知一")

    task = asyncio.create_task(send())
    await hold.arrived.wait()
    await env.clock.sleep(HELD)
    hold.release.set()
    await task


async def test_a_slow_call_counts_from_its_answer(
        make_env: Callable[..., Awaitable[Env]]) -> None:
    env = await _one_minute_env(make_env)
    rates = env.rt.costs.appchat(MEMBERS)
    grant = await env.rt.limiter.take(rates)
    assert grant.granted
    await _held_send(env, grant, restamp=True)
    async with env.rt.limiter.hold(rates):
        await env.rt.wecom.appchat_send(CHAT, "通知二")
    assert env.sim.errors_answered(45009, "appchat/send") == 0
    assert [d.content for d in env.sim.deliveries_to(CHAT)] == ["通知一", "通知二"]


async def test_stamped_at_the_grant_only_the_next_window_is_early(
        make_env: Callable[..., Awaitable[Env]]) -> None:
    """The cause, shown: without the re-stamp the limiter frees the slow call's entry before
    WeCom does, grants the next send at once, and WeCom answers 45009."""
    env = await _one_minute_env(make_env)
    rates = env.rt.costs.appchat(MEMBERS)
    await _held_send(env, await env.rt.limiter.take(rates), restamp=False)
    assert (await env.rt.limiter.take(rates)).wait == 0.0  # granted at once
    with contextlib.suppress(RateLimitedError):
        await env.rt.wecom.appchat_send(CHAT, "通知二")
    assert env.sim.errors_answered(45009, "appchat/send") >= 1
