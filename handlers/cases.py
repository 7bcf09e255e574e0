"""事件 in app chat: grid workers report, police take, answer, go on site and close.

    上报 [@网格编码] 描述        (then photos and a location within minutes: same case)
    我的事件  ·  超时事件  ·  事件 E12
    接单 E12  ·  答复 E12 内容  ·  到场 E12  ·  办结 E12 结果  ·  转交 E12 账号|调解
    类别 E12 交通|紧急|一般  ·  当事人 E12 姓名 姓名
    满意 / 基本满意 / 不满意   (the reporter's rating after 办结; skipped when none is asked)
    a photo or location from a member: joins the case they reported in the last minutes
    微信客服 (KfMessage): residents' text, photos, location, clues, ratings (cases.residents)

The work is done by cases/ (CaseService); this module only parses, dispatches and replies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from bot.context import Context
from bot.events import ImageMessage, KfMessage, LocationMessage, TextMessage
from bot.filters import Command, text_equals
from bot.router import Router, SkipHandler
from cases import notify, texts
from cases.deps import CasesDeps
from cases.models import SATISFACTION
from cases.residents import ResidentDesk
from cases.service import BadInput, CaseService, Refused
from registry.models import Role

router = Router(name=__name__)

REPORT = Command("上报")
MINE = Command("我的事件")
OVERDUE = Command("超时事件")
VIEW = Command("事件")
ACCEPT, ANSWER, ARRIVE = Command("接单"), Command("答复"), Command("到场")
CLOSE, TRANSFER = Command("办结"), Command("转交")
CORRECT, PARTIES = Command("类别"), Command("当事人")

STAFF = (Role.GRID_WORKER.value, Role.OFFICER.value, Role.AUXILIARY.value)
POLICE = (Role.OFFICER.value, Role.AUXILIARY.value, Role.SUPERVISOR.value)
router.describe("上报 描述：巡查发现的问题交网格民警处理（随后发送照片、位置会附上）", *STAFF)
router.describe("我的事件；事件 E12 查看经过；超时事件（负责人）", *STAFF, Role.SUPERVISOR.value)
router.describe("接单 E12｜答复 E12 内容｜到场 E12｜办结 E12 结果｜转交 E12 账号或调解", *POLICE)

MAX_INPUT = 20_000  # characters read at all; longer input is refused before parsing


def _svc(ctx: Context) -> CaseService:
    return CaseService(CasesDeps.from_context(ctx),
                       source=f"chat:{ctx.source}" if ctx.source else "chat")


async def _say(ctx: Context, userid: str, text: str) -> None:
    # WeCom drops an identical message within 30 min (duplicate check): stamp every reply
    stamp = dt.datetime.fromtimestamp(ctx.clock.now(), texts.CHINA_TZ).strftime("%H:%M:%S")
    await ctx.reply(userid, f"{text}\n（{stamp}）")


async def _run(event: TextMessage, ctx: Context,
               work: Callable[[CaseService, str], Awaitable[str]], args: str) -> None:
    if len(event.content) > MAX_INPUT:
        await _say(ctx, event.sender, f"消息过长（{len(event.content)} 字），未作处理。请精简到 "
                                      "1000 字以内后重新发送。")
        return
    try:
        answer = await work(_svc(ctx), args)
    except (Refused, BadInput) as error:
        answer = str(error)
    await _say(ctx, event.sender, answer)


def _split(args: str) -> tuple[str, str]:
    head, _, rest = args.strip().partition(" ")
    return head, rest.strip()


@router.message(REPORT)
async def handle_report(event: TextMessage, ctx: Context) -> None:
    async def work(svc: CaseService, args: str) -> str:
        return (await svc.report(event.sender, args)).reply

    await _run(event, ctx, work, REPORT.args(event))


@router.message(MINE)
async def handle_mine(event: TextMessage, ctx: Context) -> None:
    async def work(svc: CaseService, _: str) -> str:
        cases = await svc.queue(event.sender, limit=30)
        if not cases:
            return "您目前没有待办的事件。"
        rows = texts.queue_lines(cases, svc.deps.now())
        return f"您的事件（{len(cases)} 件，超时在前）：\n" + "\n".join(rows)

    await _run(event, ctx, work, "")


@router.message(OVERDUE)
async def handle_overdue(event: TextMessage, ctx: Context) -> None:
    async def work(svc: CaseService, _: str) -> str:
        cases = await svc.overdue(event.sender)
        if not cases:
            return "辖区内没有超时未接单的事件。"
        rows = texts.queue_lines(cases[:30], svc.deps.now())
        return f"超时未接单的事件（{len(cases)} 件）：\n" + "\n".join(rows)

    await _run(event, ctx, work, "")


@router.message(VIEW)
async def handle_view(event: TextMessage, ctx: Context) -> None:
    async def work(svc: CaseService, args: str) -> str:
        if not args:
            return "请写明事件编号，如：事件 E12"
        view = await svc.view(event.sender, args)
        c = view.case
        people = await notify.names(svc.deps, {c.handler, *c.officers, *c.escalated_to,
                                               *(e.actor for e in view.timeline)})
        return texts.view_text(view, people)

    await _run(event, ctx, work, VIEW.args(event))


@router.message(ACCEPT)
async def handle_accept(event: TextMessage, ctx: Context) -> None:
    async def work(svc: CaseService, args: str) -> str:
        case = await svc.accept(event.sender, args)
        return (f"已接单 {texts.head(case)}。到场后回复「到场 {case.id}」，"
                f"办完回复「办结 {case.id} 结果」。")

    await _run(event, ctx, work, ACCEPT.args(event))


@router.message(ANSWER)
async def handle_answer(event: TextMessage, ctx: Context) -> None:
    async def work(svc: CaseService, args: str) -> str:
        number, body = _split(args)
        case = await svc.answer(event.sender, number, body)
        relayed = "（微信客服无法送达，已转网格员转告）" if case.relayed else ""
        return f"答复已发给上报人：{case.id}{relayed}"

    await _run(event, ctx, work, ANSWER.args(event))


@router.message(ARRIVE)
async def handle_arrive(event: TextMessage, ctx: Context) -> None:
    async def work(svc: CaseService, args: str) -> str:
        case = await svc.arrive(event.sender, args)
        return f"已记录到场：{texts.head(case)}。办完回复「办结 {case.id} 结果」。"

    await _run(event, ctx, work, ARRIVE.args(event))


@router.message(CLOSE)
async def handle_close(event: TextMessage, ctx: Context) -> None:
    async def work(svc: CaseService, args: str) -> str:
        number, body = _split(args)
        case = await svc.close(event.sender, number, body)
        return f"已办结 {case.id}，已请上报人评价。"

    await _run(event, ctx, work, CLOSE.args(event))


@router.message(TRANSFER)
async def handle_transfer(event: TextMessage, ctx: Context) -> None:
    async def work(svc: CaseService, args: str) -> str:
        number, to = _split(args)
        case = await svc.transfer(event.sender, number, to)
        return f"已转交 {case.id}（现由 {case.handler or '原处理人'} 负责）。"

    await _run(event, ctx, work, TRANSFER.args(event))


@router.message(CORRECT)
async def handle_correct(event: TextMessage, ctx: Context) -> None:
    async def work(svc: CaseService, args: str) -> str:
        number, word = _split(args)
        case = await svc.correct(event.sender, number, word)
        return f"已更正：{texts.head(case)}"

    await _run(event, ctx, work, CORRECT.args(event))


@router.message(PARTIES)
async def handle_parties(event: TextMessage, ctx: Context) -> None:
    async def work(svc: CaseService, args: str) -> str:
        number, rest = _split(args)
        case = await svc.parties(event.sender, number, rest.replace("、", " ").split())
        return f"已登记当事人：{'、'.join(case.parties)}（{case.id}）"

    await _run(event, ctx, work, PARTIES.args(event))


@router.message(text_equals(*SATISFACTION))
async def handle_rating(event: TextMessage, ctx: Context) -> None:
    svc = _svc(ctx)
    case = await svc.rate(event.sender, event.text)
    if case is None:
        raise SkipHandler
    tail = "，已转负责人回访" if event.text == "不满意" else ""
    await _say(ctx, event.sender, f"感谢评价（{case.id}：{event.text}）{tail}。")


@router.on(ImageMessage)
async def handle_photo(event: ImageMessage, ctx: Context) -> None:
    async def work(svc: CaseService, _: str) -> str:
        return (await svc.attach(event.sender, photo=event.media_id or event.msg_id)).reply

    await _run_event(event.sender, ctx, work)


@router.on(LocationMessage)
async def handle_location(event: LocationMessage, ctx: Context) -> None:
    where = f"{event.latitude:.5f},{event.longitude:.5f} {event.label[:100]}".strip()

    async def work(svc: CaseService, _: str) -> str:
        return (await svc.attach(event.sender, location=where)).reply

    await _run_event(event.sender, ctx, work)


@router.on(KfMessage)
async def handle_resident(event: KfMessage, ctx: Context) -> None:
    await ResidentDesk(CasesDeps.from_context(ctx), source=f"kf:{ctx.source}").handle(event)


async def _run_event(sender: str, ctx: Context,
                     work: Callable[[CaseService, str], Awaitable[str]]) -> None:
    try:
        answer = await work(_svc(ctx), "")
    except (Refused, BadInput) as error:
        answer = str(error)
    await _say(ctx, sender, answer)
