"""A scheduler process for the exactly-once test: adds the shared jobs, runs, exits.

python -m tests.bot.scheduler_proc REDIS_URL DUE_EPOCH RUN_UNTIL_EPOCH JOBS
"""

from __future__ import annotations

import asyncio
import sys
import time

from bot.clock import Clock
from bot.keys import Keys
from bot.scheduler import Scheduler


async def main(url: str, due: float, until: float, jobs: int) -> None:
    scheduler = Scheduler(url, Keys("gridbot"), Clock())
    scheduler.start()
    for n in range(jobs):  # every process adds the same jobs: replace, never duplicate
        scheduler.add_date_job(f"job-{n}", due, "tests.bot.jobs:record_fire",
                               {"url": url, "tag": str(n)})
    await asyncio.sleep(max(0.0, until - time.time()))
    scheduler.shutdown()
    await asyncio.sleep(0.01)


if __name__ == "__main__":
    url, due, until, jobs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    asyncio.run(main(url, due, until, jobs))
