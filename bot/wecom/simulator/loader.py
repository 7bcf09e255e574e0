"""Loading groups from a CSV into the simulator (thin: the registry owns the real format).

Columns read by header name: chat_id, name, kind (customer_group | appchat | webhook),
owner, member_count, webhook_key, quota_used, members ("a|b", app chats). Unknown columns
are ignored. `gridbot sim --loader module:function` swaps in another loader with the same
signature (e.g. the registry's).
"""

from __future__ import annotations

import csv
import importlib
from collections.abc import Callable
from pathlib import Path

from bot.wecom.simulator.simulator import WeComSimulator

Loader = Callable[[Path, WeComSimulator], int]


def load_groups_csv(path: Path, sim: WeComSimulator) -> int:
    """Add every row's group; owners missing from the directory are added by userid."""
    count = 0
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            _add_row(sim, row)
            count += 1
    return count


def _add_row(sim: WeComSimulator, row: dict[str, str]) -> None:
    chat_id, name, owner = row["chat_id"], row.get("name") or row["chat_id"], row.get("owner", "")
    kind = row.get("kind") or "customer_group"
    members = int(row.get("member_count") or 0)
    if owner and owner not in sim.state.directory.users:
        sim.load_directory({owner: owner})
    if kind == "appchat":
        listed = [m for m in (row.get("members") or "").split("|") if m]
        sim.add_appchat(chat_id, name, listed or [owner] * max(members, 1))
    elif kind == "webhook":
        sim.add_robot(row["webhook_key"], chat_id)
    else:
        sim.add_customer_group(chat_id, name, owner, members or 1, int(row.get("quota_used") or 0))


def resolve_loader(spec: str) -> Loader:
    """ "package.module:function" -> the function."""
    module, _, name = spec.partition(":")
    loader: Loader = getattr(importlib.import_module(module), name)
    return loader
