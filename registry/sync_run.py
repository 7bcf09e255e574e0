"""`gridbot groups sync`: a RegistrySync against the real (or simulated) WeCom API."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import aiohttp
from tqdm import tqdm

from bot.keys import Keys
from bot.settings import Settings
from bot.wecom.client import WeComClient
from bot.wecom.errors import WeComError
from registry.placement import Placer
from registry.store import Registry
from registry.sync import RegistrySync, SyncBusyError, SyncProgress


async def run_sync(
    registry: Registry, settings: Settings, *, owners: Sequence[str] = (), restart: bool = False
) -> int:
    """Run (or resume) a sync and print the outcome in Chinese; the exit code."""
    async with aiohttp.ClientSession() as session:
        client = WeComClient(session, settings.wecom, registry.redis,
                             Keys(settings.redis.prefix), registry.clock)
        placer = Placer(registry, settings.registry.naming_rule)
        sync = RegistrySync(registry, client, placer, page_size=settings.registry.sync_page_size)
        bar = tqdm(desc="同步客户群", unit="群", file=sys.stderr)
        try:
            result = await sync.run(owners=owners, restart=restart,
                                    on_page=lambda p: _advance(bar, p))
        except SyncBusyError as error:
            _say(str(error))
            return 1
        except WeComError as error:
            _say(f"同步中断：{error}。已完成的部分已保存，再次运行将从断点继续")
            return 1
        finally:
            bar.close()
    _say(summary(result))
    return 0


def _advance(bar: tqdm, progress: SyncProgress) -> None:
    bar.update(progress.listed - bar.n)


def summary(p: SyncProgress) -> str:
    resumed = "（从断点继续）" if p.resumed else ""
    lines = [
        f"同步完成{resumed}：列出 {p.listed} 个客户群，变更 {p.changed}，未变 {p.unchanged}，"
        f"未定位 {p.unplaced}，读取失败 {p.failed}"
    ]
    if p.missing:
        lines.append(f"登记中有 {len(p.missing)} 个客户群企业微信已不再列出（可能已解散）：")
        lines.extend(f"  {chat_id}" for chat_id in p.missing[:50])
    return "\n".join(lines)


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
