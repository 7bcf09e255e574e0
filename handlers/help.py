"""「帮助」/ help: the commands the sender may use, collected from every router's HelpEntry."""

from __future__ import annotations

from bot.context import Context
from bot.events import TextMessage
from bot.filters import text_equals
from bot.help import HelpEntry
from bot.router import Router

router = Router(name=__name__)
router.describe("帮助：查看您可以使用的命令")

HELP_WORDS = ("帮助", "help", "菜单", "?", "？")


@router.message(text_equals(*HELP_WORDS))
async def handle_help(event: TextMessage, ctx: Context) -> None:
    """Reply with the 帮助 lines visible to the sender's role (unknown sender: public lines)."""
    person = await ctx.registry.person(event.sender)
    role = person.role.value if person else ""
    lines = [f"· {entry.usage}" for entry in visible_entries(ctx, role)]
    who = f"{person.name}（{person.role.label}）" if person else "您"
    await ctx.reply(event.sender, f"{who}可以使用以下命令：\n" + "\n".join(lines))


def visible_entries(ctx: Context, role: str) -> list[HelpEntry]:
    """Entries of every router, in router order, open to everyone or to `role`."""
    entries = (entry for r in ctx.routers for entry in r.help)
    return [entry for entry in entries if not entry.roles or role in entry.roles]
