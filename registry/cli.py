"""`gridbot groups …`: import, sync, tree, stats, show, who, unplaced, staffing, synth.

Each command reads settings (--settings), connects to redis.url or starts the embedded
redis-server (its AOF in redis.data_dir keeps the registry between commands) and prints
Chinese text; long work shows a tqdm progress bar on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from tqdm import tqdm

from bot.audit import CONSOLE_NOTE, CONSOLE_SOURCE, AuditLog
from bot.clock import make_clock
from bot.keys import Keys
from bot.redis import connect, redis_url_for
from bot.settings import Settings, load_settings
from registry import moves, report
from registry.city import City
from registry.divisions import DivisionError, load_tree
from registry.importer import Importer, detect_kind
from registry.models import DeliveryKind, Level, Node
from registry.placement import Placer
from registry.staffing import staffing_gaps
from registry.store import Registry
from registry.sync_run import run_sync
from registry.synthetic import DEFAULT_SHARES, generate_city
from registry.tabular import TableError

Work = Callable[[Registry, Settings, argparse.Namespace], Awaitable[int]]
IMPORT_ORDER = {"nodes": 0, "people": 1, "groups": 2}


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("groups", help="网格与居民群登记（导入、同步、查询）")
    sub = parser.add_subparsers(dest="groups_command", required=True, metavar="子命令")
    p = sub.add_parser("import", help="从 CSV/XLSX 导入节点、人员或群")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--type", choices=("groups", "nodes", "people"), default=None,
                   help="文件类型（默认按表头判断）")
    p.set_defaults(func=_command(_import))
    p = sub.add_parser("sync", help="从企业微信同步客户群（可断点续传）")
    p.add_argument("--owner", action="append", default=[], help="只同步这些群主的群")
    p.add_argument("--restart", action="store_true", help="放弃未完成的同步，从头开始")
    p.set_defaults(func=_command(_sync))
    for name, func, text in (("tree", _tree, "显示节点树及各节点群数"),
                             ("stats", _stats, "按类型统计节点下的群和人数"),
                             ("staffing", _staffing, "检查网格 1+2+N / 1+N 配备缺口"),
                             ("who", _who, "谁负责该节点")):
        p = sub.add_parser(name, help=text)
        p.add_argument("node", nargs="?", default="", help="节点编码或路径（默认全市）")
        if name == "tree":
            p.add_argument("--depth", type=int, default=2, help="显示几层（默认 2）")
        p.set_defaults(func=_command(func))
    p = sub.add_parser("show", help="显示一个群：位置、群主、历史")
    p.add_argument("chat", help="群ID或群名")
    p.set_defaults(func=_command(_show))
    p = sub.add_parser("unplaced", help="列出无法定位的群、改名后待确认迁移的群及原因")
    p.set_defaults(func=_command(_unplaced))
    p = sub.add_parser("confirm-move", help="确认迁移一个改名后指向别处的群（须同时负责两处）",
                       description=CONSOLE_NOTE)
    p.add_argument("chat", help="群ID或群名")
    p.add_argument("--as", dest="actor", required=True,
                   help="以该人员身份确认（userid；审计记为服务器控制台操作 cli:console）")
    p.set_defaults(func=_command(_confirm_move))
    _register_synth(sub)
    _register_divisions(sub)


def _register_divisions(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "divisions", help="按官方统计用区划代码建立市/县的 县区—乡镇街道—村社区 节点树",
        description="按国家统计局统计用区划代码建立节点树（市、县区、乡镇街道、村社区），"
                    "之后只需导入网格、楼栋、人员和群。随附数据见 registry/data/README.md。")
    p.add_argument("code", help="市或县区的 6 位区划代码，如 140100（太原市）、140105（小店区）")
    p.add_argument("--file", type=Path, default=None,
                   help="自备区划文件（code,name,parent 三列 CSV）；默认用随附数据")
    p.add_argument("--out", type=Path, default=None,
                   help="只写出节点 CSV（可检查后用 groups import 导入），不直接导入")
    p.set_defaults(func=_divisions_command)


def _divisions_command(args: argparse.Namespace) -> int:
    try:
        nodes = load_tree(args.code, args.file)
    except (DivisionError, OSError) as error:
        out(f"建立区划树失败：{error}")
        return 2
    counts = Counter(n.level for n in nodes)
    root = nodes[0]
    summary = (f"{root.name}（{args.code}）：县级 {counts[Level.COUNTY]} 个、乡级 "
               f"{counts[Level.TOWNSHIP]} 个、村级 {counts[Level.VILLAGE]} 个"
               f"（其中社区 {sum(1 for n in nodes if n.urban)} 个）")
    if args.out is not None:
        City(nodes, [], [], {}, {}).write_nodes_csv(args.out)
        out(f"{summary}\n已写出 {args.out}；导入：gridbot groups import {args.out}")
        return 0

    async def store(registry: Registry, settings: Settings, args: argparse.Namespace) -> int:
        await registry.upsert_nodes(nodes)
        out(f"{summary}\n已导入 {len(nodes)} 个节点。下一步：导入网格、楼栋（节点文件）、"
            "人员和群（gridbot groups import …）")
        return 0

    return _command(store)(args)


def _register_synth(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("synth", help="生成合成的城市数据（CSV，默认吕梁市，或 --divisions）")
    p.add_argument("--out", type=Path, required=True, help="群文件路径；节点、人员文件写在旁边")
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--groups", type=int, default=5267, help="群总数（默认 5267）")
    p.add_argument("--residents", type=int, default=420_000, help="居民总数（默认 420000）")
    shares = ",".join(f"{k.value}={v}" for k, v in DEFAULT_SHARES.items())
    p.add_argument("--shares", default=shares, help=f"各发送方式占比（默认 {shares}）")
    p.add_argument("--gaps", type=int, default=5, help="故意留下的配备缺口数（默认 5）")
    p.add_argument("--quota-partial", type=float, default=0.2,
                   help="本月已用部分群发额度的客户群占比（默认 0.2）")
    p.add_argument("--quota-full", type=int, default=5, help="本月群发额度已用完的客户群数")
    p.add_argument("--county", action="append", default=[], help="只生成这些县区（编码）")
    p.add_argument("--divisions", default="", metavar="CODE",
                   help="用该市/县区的官方区划树（如 140100）代替吕梁市")
    p.add_argument("--divisions-file", type=Path, default=None,
                   help="与 --divisions 同用：自备区划文件（code,name,parent）")
    p.set_defaults(func=_synth)


def _command(work: Work) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        settings = load_settings(args.settings)
        with redis_url_for(settings.redis.url, settings.redis.data_dir) as url:
            return asyncio.run(_with_registry(url, settings, args, work))

    return run


async def _with_registry(
    url: str, settings: Settings, args: argparse.Namespace, work: Work
) -> int:
    redis = connect(url)
    clock = make_clock(settings.clock.speed, settings.clock.origin)
    try:
        registry = await Registry.open(redis, Keys(settings.redis.prefix), clock,
                                       max_cached_groups=settings.registry.max_cached_groups)
        return await work(registry, settings, args)
    finally:
        await redis.aclose()


async def _import(registry: Registry, settings: Settings, args: argparse.Namespace) -> int:
    files: list[Path] = args.files
    try:
        kinds = {f: args.type or detect_kind(f) for f in files}
    except TableError as error:
        out(f"导入失败：{error}")
        return 1
    failed = False
    for path in sorted(files, key=lambda f: IMPORT_ORDER[kinds[f]]):
        with tqdm(desc=f"导入 {path.name}", unit="行", file=sys.stderr, leave=False) as bar:
            importer = Importer(registry, Placer(registry, settings.registry.naming_rule),
                                progress=bar.update)
            result = await importer.import_file(path, kinds[path])
        out(result.report())
        failed = failed or not result.ok
    return 1 if failed else 0


async def _sync(registry: Registry, settings: Settings, args: argparse.Namespace) -> int:
    return await run_sync(registry, settings, owners=args.owner, restart=args.restart)


async def _print_node_report(registry: Registry, args: argparse.Namespace,
                             lines: Callable[[Node], Awaitable[list[str]]]) -> int:
    """Resolve args.node (a refusal is printed by resolve) and print its report lines."""
    node = await report.resolve(registry, args.node)
    if node is None:
        return 1
    for line in await lines(node):
        out(line)
    return 0


async def _tree(registry: Registry, settings: Settings, args: argparse.Namespace) -> int:
    return await _print_node_report(
        registry, args, lambda node: report.tree_lines(registry, node, args.depth))


async def _stats(registry: Registry, settings: Settings, args: argparse.Namespace) -> int:
    return await _print_node_report(
        registry, args, lambda node: report.stats_lines(registry, node))


async def _who(registry: Registry, settings: Settings, args: argparse.Namespace) -> int:
    return await _print_node_report(
        registry, args, lambda node: report.who_lines(registry, node))


async def _show(registry: Registry, settings: Settings, args: argparse.Namespace) -> int:
    lines = await report.group_lines(registry, args.chat)
    for line in lines:
        out(line)
    return 0 if len(lines) > 1 else 1


async def _unplaced(registry: Registry, settings: Settings, args: argparse.Namespace) -> int:
    found = await registry.unplaced()
    out(f"无法定位的群：{len(found)} 个")
    for group in found:
        extra = f"（候选：{'、'.join(group.candidates)}）" if group.candidates else ""
        out(f"  {group.chat_id}  {group.name}：{group.reason}{extra}")
    held = await moves.requests(registry)
    out(f"改名后指向别处、待确认迁移的群：{len(held)} 个（确认：gridbot groups confirm-move）")
    for request in held:
        out(f"  {request.chat_id}  {request.name}：仍在 "
            f"{await moves.describe(registry, request.current)}，新名称指向 "
            f"{await moves.describe(registry, request.to)}")
    return 0


async def _confirm_move(registry: Registry, settings: Settings, args: argparse.Namespace
                        ) -> int:
    found = await registry.groups([args.chat]) or await registry.groups_named(args.chat)
    if len(found) != 1:
        out(f"找不到唯一的群「{args.chat}」，请用群ID")
        return 1
    audit = AuditLog(registry.redis, registry.keys.keys, registry.clock)
    done, answer = await moves.confirm(registry, audit, args.actor, found[0],
                                       source=CONSOLE_SOURCE)
    out(answer)
    return 0 if done else 1


async def _staffing(registry: Registry, settings: Settings, args: argparse.Namespace) -> int:
    node = await report.resolve(registry, args.node)
    if node is None:
        return 1
    gaps = await staffing_gaps(registry, node.code)
    out(f"{node.name}：{len(gaps)} 个网格配备不全")
    for gap in gaps:
        out(f"  {gap.grid}  {gap.describe()}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    try:
        shares = parse_shares(args.shares)
        tree = tuple(load_tree(args.divisions, args.divisions_file)) if args.divisions else ()
        city = generate_city(
            seed=args.seed, shares=shares, total_groups=args.groups, residents=args.residents,
            staffing_gaps=args.gaps, quota_partial=args.quota_partial,
            quota_full=args.quota_full, counties=tuple(args.county), tree=tree,
        )
    except (ValueError, OSError) as error:
        out(f"生成失败：{error}")
        return 2
    paths = city.write_csv(args.out)
    out(f"已生成：{len(city.nodes)} 个节点、{len(city.people)} 名人员、{len(city.groups)} 个群、"
        f"居民 {city.residents} 人，故意留下 {len(city.gaps)} 个配备缺口")
    for path in paths:
        out(f"  {path}")
    out("导入：gridbot groups import " + " ".join(str(p) for p in paths))
    return 0


def parse_shares(text: str) -> dict[DeliveryKind, float]:
    """"customer_group=0.9,appchat=0.06,webhook=0.04" → shares (must sum to 1)."""
    shares: dict[DeliveryKind, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        try:
            shares[DeliveryKind(name.strip())] = float(value)
        except ValueError:
            raise ValueError(f"占比「{part}」格式不正确，应如 appchat=0.06") from None
    if abs(sum(shares.values()) - 1.0) > 1e-6 or any(v < 0 for v in shares.values()):
        raise ValueError("各发送方式占比之和必须为 1")
    return shares


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m registry.cli …` (the same as `gridbot groups …`)."""
    parser = argparse.ArgumentParser(prog="gridbot")
    parser.add_argument("--settings", default=None)
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["groups", *(argv if argv is not None else sys.argv[1:])])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
