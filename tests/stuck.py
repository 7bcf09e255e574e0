"""Bounded teardown: a step that hangs fails the test at once, naming every task still waiting.

A hang in teardown otherwise shows only as pytest-timeout's main-thread stack (the event loop
in select()), which says nothing about which coroutine is stuck.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable


def pending_tasks() -> str:
    """Every unfinished task of the running loop with its stack, as text."""
    out = io.StringIO()
    current = asyncio.current_task()
    for task in asyncio.all_tasks():
        if task is not current and not task.done():
            out.write(f"--- {task.get_name()}: {task.get_coro()!r}\n")
            task.print_stack(limit=12, file=out)
    return out.getvalue()


async def bounded(step: Awaitable[object], seconds: float, what: str) -> None:
    """Await `step`; past `seconds` raise AssertionError with the stacks of what still waits."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if done:
        task.result()
        return
    stacks = pending_tasks()
    task.cancel()
    raise AssertionError(f"{what} did not finish within {seconds:.0f} s; waiting:\n{stacks}")
