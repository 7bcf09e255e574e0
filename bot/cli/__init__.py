"""`gridbot` command line: each feature package contributes its sub-commands.

A module in COMMAND_MODULES exposes `register(subparsers)`, which adds its parsers and sets
`func=` to a callable taking (args) and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bot.settings import SettingsError

COMMAND_MODULES = (
    "bot.cli.serve",  # serve
    "broadcasts.cli",  # worker, broadcast …
    "registry.cli",  # groups import | sync | tree | stats | unplaced | staffing
    "collect.cli",  # collect export | campaign …
    "cases.cli",  # cases list | show | accept … | link | assess
    "deliberation.cli",  # deliberation verify-draw | verify-receipt
    "bot.wecom.simulator.cli",  # sim
    "bot.cli.demo",  # demo
)


def build_parser() -> argparse.ArgumentParser:
    """The full `gridbot` parser."""
    parser = argparse.ArgumentParser(prog="gridbot", description="网格群机器人 GridBot")
    parser.add_argument("--settings", default=None, help="配置文件路径（默认 ./settings.toml）")
    sub = parser.add_subparsers(dest="command", required=True, metavar="命令")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            missing = error.name or ""
            if name != missing and not name.startswith(missing + "."):
                raise  # a real import error inside an existing module
            continue  # that package's commands are not part of this build (yet)
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `gridbot` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
