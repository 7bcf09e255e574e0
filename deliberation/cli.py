"""`gridbot deliberation …`: check published records offline, as any villager could.

    gridbot deliberation verify-draw FILE      recompute a draw from its published JSON
                                               (/draw/<id>.json): list hash, seed, allocation
    gridbot deliberation verify-receipt FILE RECEIPT
                                               check a ballot receipt against a matter's
                                               published record (/matter/<id>/record.json)
Neither needs the bot's Redis or secrets: only the published file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from deliberation import chain, lottery


def out(text: str) -> None:
    sys.stdout.write(text + "\n")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("deliberation", help="说事议事：核对抓阄与选票回执")
    sub = parser.add_subparsers(dest="delib_command", required=True, metavar="子命令")
    p = sub.add_parser("verify-draw", help="按公示的名单和种子重新计算抓阄结果")
    p.add_argument("file", type=Path, help="公示记录 JSON（/draw/<编号>.json）")
    p.add_argument("--show", action="store_true", help="列出重新计算的分配结果")
    p.set_defaults(func=verify_draw)
    p = sub.add_parser("verify-receipt", help="用回执核对自己的票是否计入")
    p.add_argument("file", type=Path, help="选票记录 JSON（/matter/<编号>/record.json）")
    p.add_argument("receipt", help="回执：议题编号-票号-校验码")
    p.set_defaults(func=verify_receipt)


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        out(f"无法读取 {path}：{error}")
        return None
    return data if isinstance(data, dict) else None


def verify_draw(args: argparse.Namespace) -> int:
    record = _load(args.file)
    if record is None:
        return 2
    try:
        check = lottery.verify(record)
    except (KeyError, TypeError, ValueError) as error:
        out(f"记录不完整：缺少或无法解析 {error}")
        return 2
    out(f"种子 {check.outcome.seed}")
    if args.show:
        for n, (who, item) in enumerate(check.outcome.allocation, 1):
            out(f"{n}. {who} → {item}")
    if check.ok:
        out(f"核对一致：{len(check.outcome.allocation)}项分配与公示完全相同")
        return 0
    for problem in check.problems:
        out(f"不一致：{problem}")
    return 1


def verify_receipt(args: argparse.Namespace) -> int:
    record = _load(args.file)
    receipt = chain.Receipt.parse(args.receipt)
    if record is None or receipt is None:
        out("回执格式不对：应为 议题编号-票号-校验码" if record is not None else "")
        return 2
    found = chain.prove(receipt, str(record["matter"]), str(record["roll_hash"]),
                        [str(e) for e in record["entries"]], str(record["head"]))
    out(found.message)
    return 0 if found.ok and found.counted else 1
