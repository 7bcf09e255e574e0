"""`gridbot sim`: the WeCom simulator as a standalone server (demo, benchmarks, manual tests).

Corp id, secrets, ceilings and the clock come from the same settings the bot reads, so the
two agree; the options below override the simulator's own knobs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.clock import make_clock
from bot.log import setup_logging
from bot.settings import Settings, load_settings
from bot.wecom.simulator.config import FaultConfig, LatencyConfig, OwnerProfile, SimConfig
from bot.wecom.simulator.simulator import WeComSimulator

log = logging.getLogger(__name__)
# the registry owns the group CSV format (City.write_csv: groups.csv plus its _nodes/_people)
DEFAULT_LOADER = "registry.synthetic:load_csv_into_simulator"
Loader = Callable[[Path, WeComSimulator], int]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sim", help="运行企业微信模拟器（演示、压测用）"
    )
    parser.add_argument("--host", default="127.0.0.1", help="监听地址")
    parser.add_argument("--port", type=int, default=8081, help="监听端口（默认 8081）")
    parser.add_argument("--speed", type=float, default=None, help="时钟倍速（默认取配置）")
    parser.add_argument("--origin", type=float, default=None, help="时钟起点（默认取配置）")
    parser.add_argument("--seed", type=int, default=0, help="随机种子")
    parser.add_argument(
        "--latency-ms", type=float, default=60.0, help="延迟中位数（毫秒，0 关闭）"
    )
    parser.add_argument("--latency-p99-ms", type=float, default=400.0, help="延迟 p99（毫秒）")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="故障注入比例 0–1")
    parser.add_argument(
        "--fault-mode",
        choices=["after_commit", "before_commit"],
        default="after_commit",
        help="超时故障是否已处理",
    )
    parser.add_argument("--groups", type=Path, default=None, help="群 CSV 文件")
    parser.add_argument(
        "--loader", default=DEFAULT_LOADER, help="CSV 加载函数 module:function（默认登记册格式）"
    )
    parser.add_argument("--callback-url", default="", help="机器人回调地址（默认按配置推算）")
    parser.add_argument(
        "--owners",
        choices=["default", "always"],
        default="default",
        help="群主确认模型：default（固定分布）或 always（全部 1 分钟内确认）",
    )
    parser.set_defaults(func=run)


def build_simulator(args: argparse.Namespace, settings: Settings) -> WeComSimulator:
    """The simulator `args` describe, for the corp in `settings`, with its groups loaded."""
    speed = settings.clock.speed if args.speed is None else args.speed
    origin = settings.clock.origin if args.origin is None else args.origin
    overrides: dict[str, Any] = {
        "seed": args.seed,
        "latency": LatencyConfig(args.latency_ms / 1000, args.latency_p99_ms / 1000),
        "faults": (FaultConfig(rate=args.fault_rate, timeout_mode=args.fault_mode),),
    }
    if args.callback_url:
        overrides["callback_url"] = args.callback_url
    if args.owners == "always":
        overrides["owner_profile"] = OwnerProfile.always((30.0, 60.0))
    sim = WeComSimulator(SimConfig.from_settings(settings, make_clock(speed, origin), **overrides))
    if args.groups is not None:
        log.info("已加载 %d 个群", resolve_loader(args.loader)(args.groups, sim))
    return sim


def resolve_loader(spec: str) -> Loader:
    """The loader named "package.module:function"; it takes (path, simulator)."""
    module, _, name = spec.partition(":")
    loader: Loader = getattr(importlib.import_module(module), name)
    return loader


def run(args: argparse.Namespace) -> int:
    setup_logging()
    sim = build_simulator(args, load_settings(args.settings))
    clock = sim.clock  # the bot must run with the same speed and origin to agree on now()
    log.info("模拟时钟 speed=%s origin=%.3f", clock.speed, clock.origin)
    log.info(
        "企业微信模拟器已启动: http://%s:%d/cgi-bin/ （管理接口 /sim/）", args.host, args.port
    )
    web.run_app(sim.app, host=args.host, port=args.port, print=None)
    return 0
